# nginx over TLS for the benchmarks, sourced by bench/compare.sh (and usable alone):
#
#     source bench/nginx.sh; nginx_start DIR      # sets NGINX_H2, NGINX_H1, NGINX_CA
#
# Makes a private CA and an ECDSA certificate for localhost, 127.0.0.1 and *.dnsbench.test
# (the names bench/dns_server.py answers), and starts nginx (from the package registries) with
# one worker, on two free loopback ports: NGINX_H2 offers HTTP/2 (ALPN h2), NGINX_H1 only
# HTTP/1.1. Every path answers a small HTML page. NGINX_STATUS is a plain-HTTP port whose
# stub_status page counts the connections accepted (nginx_accepts prints that count), which is
# how the benchmark counts TLS handshakes: every connection nginx accepts is one.
# nginx_stop ends it.

nginx_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

nginx_start() { # DIR
    local dir=$1 nginx
    nginx=$(command -v nginx || echo /usr/sbin/nginx)
    [[ -x $nginx ]] || { echo "nginx is not installed (apt-get install nginx-light)" >&2; return 1; }
    mkdir -p "$dir"
    (
        cd "$dir" || exit 1
        openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
        openssl req -x509 -new -key ca.key -subj "/CN=fetch bench CA" -days 30 -out ca.pem \
            2>/dev/null
        openssl ecparam -name prime256v1 -genkey -noout -out site.key 2>/dev/null
        openssl req -new -key site.key -subj "/CN=localhost" -out site.csr 2>/dev/null
        printf 'subjectAltName=DNS:localhost,DNS:*.dnsbench.test,IP:127.0.0.1\n' >site.ext
        openssl x509 -req -in site.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
            -extfile site.ext -out site.pem 2>/dev/null
    ) || return 1
    NGINX_H2=$(nginx_free_port)
    NGINX_H1=$(nginx_free_port)
    NGINX_STATUS=$(nginx_free_port)
    NGINX_CA=$dir/ca.pem
    local page='<!doctype html><html><head><title>nginx page</title></head><body><p>Hello.</p></body></html>'
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    scgi_temp_path $dir/scgi;
    uwsgi_temp_path $dir/uwsgi;
    default_type text/html;
    ssl_certificate $dir/site.pem;
    ssl_certificate_key $dir/site.key;
    server { listen 127.0.0.1:$NGINX_H2 ssl http2; location / { return 200 '$page'; } }
    server { listen 127.0.0.1:$NGINX_H1 ssl; location / { return 200 '$page'; } }
    server { listen 127.0.0.1:$NGINX_STATUS; location / { stub_status; } }
}
EOF
    "$nginx" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
    NGINX_PID=$!
    for _ in $(seq 100); do
        (echo >/dev/tcp/127.0.0.1/"$NGINX_H1") 2>/dev/null && (echo >/dev/tcp/127.0.0.1/"$NGINX_H2") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nginx did not start: $(cat "$dir/error.log")" >&2
    return 1
}

nginx_accepts() { # the number of connections nginx has accepted, from its stub_status page
    python3 -c 'import sys, urllib.request as u
page = u.urlopen("http://127.0.0.1:%s/" % sys.argv[1]).read().decode()
print(page.splitlines()[2].split()[0])' "$NGINX_STATUS"
}

nginx_stop() {
    [[ -n ${NGINX_PID:-} ]] && kill "$NGINX_PID" 2>/dev/null
    NGINX_PID=""
}
