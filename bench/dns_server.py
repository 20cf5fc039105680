#!/usr/bin/env python3
"""A slow DNS server for the DNS benchmark: answers A queries for *.dnsbench.test with 127.0.0.1
after a fixed delay (like a real resolver on a cold cache), AAAA with no data, anything else with
NXDOMAIN. Listens on 127.0.0.53:53 only.

    python3 bench/dns_server.py --delay-ms 100
"""
import argparse
import asyncio
import struct


def parse_question(packet):
    labels, i = [], 12
    while packet[i] != 0:
        n = packet[i]
        labels.append(packet[i + 1 : i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype, _ = struct.unpack("!HH", packet[i + 1 : i + 5])
    return ".".join(labels).lower(), qtype, packet[12 : i + 5]


def answer(packet):
    txid = packet[:2]
    name, qtype, question = parse_question(packet)
    if not name.endswith("dnsbench.test"):
        return txid + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0) + question
    if qtype != 1:  # not A: NOERROR, no data
        return txid + struct.pack("!HHHHH", 0x8180, 1, 0, 0, 0) + question
    record = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([127, 0, 0, 1])
    return txid + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question + record


class Server(asyncio.DatagramProtocol):
    def __init__(self, delay):
        self.delay = delay
        self.queries = 0

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.queries += 1
        asyncio.get_running_loop().call_later(self.delay, self.reply, data, addr)

    def reply(self, data, addr):
        try:
            self.transport.sendto(answer(data), addr)
        except Exception:
            pass


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=int, default=100)
    args = parser.parse_args()
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(
        lambda: Server(args.delay_ms / 1000), local_addr=("127.0.0.53", 53)
    )
    print("dns server on 127.0.0.53:53", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
