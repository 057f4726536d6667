#!/usr/bin/env python3
# scan-full.py times a full SSCAN iteration of one N-member set against a
# server on 127.0.0.1:PORT (a gantry peer or redis-server), over a raw RESP
# connection: it deletes the key "bigset", loads N members with SADD (1,000
# a call), then follows SSCAN's cursor at COUNT until it returns 0, and
# prints the calls, the members returned and the seconds the scan took.
# Usage: bench/scan-full.py PORT N COUNT        (e.g. 16379 20000 10)
# Point it only at a throwaway server: it writes the key "bigset".
import socket
import sys
import time


def send(sock, *args):
    sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))


def read(f):
    line = f.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b"*":
        return [read(f) for _ in range(int(rest))]
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2]
    return rest


def main():
    port, n, count = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
    sock = socket.create_connection(("127.0.0.1", port))
    f = sock.makefile("rb")
    send(sock, b"DEL", b"bigset")
    read(f)
    for i in range(0, n, 1000):
        send(sock, b"SADD", b"bigset", *[b"member:%d" % j for j in range(i, min(n, i + 1000))])
        read(f)
    start, cursor, seen, calls = time.time(), b"0", 0, 0
    while True:
        send(sock, b"SSCAN", b"bigset", cursor, b"COUNT", count)
        cursor, items = read(f)
        seen, calls = seen + len(items), calls + 1
        if cursor == b"0":
            break
    print(f"port {port}: {n} members, {calls} calls, {seen} returned, {time.time() - start:.2f} s")


if __name__ == "__main__":
    main()
