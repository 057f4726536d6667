#!/usr/bin/env python3
"""Writes, from a running redis-server 7.0's COMMAND INFO (read in RESP3):

- catalog_gen.go: the ACL categories of every command and subcommand
  ("container|sub"), whether each of its key specs reads (access) or writes
  (insert, update, delete) its keys, its arity (the dispatcher checks a
  subcommand's), and the flags of its key specs (COMMAND GETKEYSANDFLAGS);
- ../cmdinfo_gen.go: the rest of what COMMAND INFO answers for each of them:
  arity, flags, first/last/step key positions, tips and key specs, as Redis
  prints them (the categories come from the ACL catalog above);
- ../testdata/redis-command-info.resp3: Redis's COMMAND INFO reply itself,
  commands and subcommands sorted by name (Redis lists them in its hash
  tables' order), which the tests compare gantry's COMMAND INFO with;
- ../cmddocs_gen.go: for each of them, the fields of its COMMAND DOCS and
  their facts (since, group, doc flags, deprecation, history versions,
  arguments), not Redis's prose (summary, complexity, history texts);
- ../testdata/redis-command-docs.resp3: Redis's COMMAND DOCS reply, sorted,
  without that prose, which the tests compare gantry's COMMAND DOCS with.

    redis-server --port 21600 --bind 127.0.0.1 --save '' &
    python3 mkcatalog.py 21600
"""
import json, os, socket, subprocess, sys


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def send(self, *args):
        self.sock.sendall(b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args))

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill(len(self.buf) + 1)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self):
        """A reply as (type, value): RESP3's type byte; a list for * and ~,
        a list of (key, value) pairs for %."""
        line = self._line()
        t, v = chr(line[0]), line[1:].decode()
        if t in "+-":
            return (t, v)
        if t == ":":
            return (t, int(v))
        if t in "$=":  # a verbatim string keeps its "txt:" prefix
            n = int(v)
            self._fill(n + 2)
            data, self.buf = self.buf[:n].decode(), self.buf[n + 2:]
            return ("$", data[4:] if t == "=" else data)
        if t in "*~":
            return (t, [self.read() for _ in range(int(v))])
        if t == "%":
            return (t, [(self.read(), self.read()) for _ in range(int(v))])
        raise ValueError("unexpected reply %r" % line)


def encode(r):
    t, v = r
    if t in "+-:":
        return "%s%s\r\n" % (t, v)
    if t == "$":
        return "$%d\r\n%s\r\n" % (len(v.encode()), v)
    if t == "%":
        return "%%%d\r\n" % len(v) + "".join(encode(k) + encode(x) for k, x in v)
    return "%s%d\r\n" % (t, len(v)) + "".join(encode(x) for x in v)


def plain(r):
    t, v = r
    if t == "%":
        return {plain(k): plain(x) for k, x in v}
    if t in "*~":
        return [plain(x) for x in v]
    return v


def sort_subs(r):
    """The info r of a command with its subcommands sorted by name."""
    fields = list(r[1])
    if fields[9][1]:
        fields[9] = (fields[9][0], sorted((sort_subs(s) for s in fields[9][1]), key=lambda s: s[1][0][1]))
    return (r[0], fields)


def sort_docs(r):
    """COMMAND DOCS's map r sorted by name, subcommands too."""
    out = []
    for k, v in sorted(r[1], key=lambda kv: kv[0][1]):
        out.append((k, ("%", [(f, sort_docs(x) if f[1] == "subcommands" else x) for f, x in v[1]])))
    return ("%", out)


def blank_prose(r):
    """COMMAND DOCS's map r with Redis's prose (summary, complexity and
    history texts) left out: gantry writes its own."""
    out = []
    for k, v in r[1]:
        fields = []
        for f, x in v[1]:
            if f[1] in ("summary", "complexity"):
                x = ("$", "")
            elif f[1] == "history":
                x = (x[0], [("*", [h[1][0], ("$", "")]) for h in x[1]])
            elif f[1] == "subcommands":
                x = blank_prose(x)
            fields.append((f, x))
        out.append((k, ("%", fields)))
    return ("%", out)


def gostr(s):
    return json.dumps(s)  # a Go string literal too


def keyspec(ks):
    bs, fk = ks["begin_search"], ks["find_keys"]
    if bs["type"] == "index":
        b = "beginIndex, %d, \"\"" % bs["spec"]["index"]
    elif bs["type"] == "keyword":
        b = "beginKeyword, %d, %s" % (bs["spec"]["startfrom"], gostr(bs["spec"]["keyword"]))
    else:
        b = "beginUnknown, 0, \"\""
    if fk["type"] == "range":
        s = fk["spec"]
        f = "findRange, [3]int{%d, %d, %d}" % (s["lastkey"], s["keystep"], s["limit"])
    elif fk["type"] == "keynum":
        s = fk["spec"]
        f = "findKeynum, [3]int{%d, %d, %d}" % (s["keynumidx"], s["firstkey"], s["keystep"])
    else:
        f = "findUnknown, [3]int{}"
    return "{%s, %s, %s, %s}" % (gostr(" ".join(ks["flags"])), gostr(ks.get("notes", "")), b, f)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    conn = Conn(int(sys.argv[1]))
    conn.send("HELLO", "3")
    conn.read()
    conn.send("COMMAND", "INFO")
    reply = conn.read()
    version = None
    conn.send("INFO", "server")
    for line in conn.read()[1].splitlines():
        if line.startswith("redis_version:"):
            version = line.split(":", 1)[1]
    reply = ("*", sorted((sort_subs(c) for c in reply[1]), key=lambda c: c[1][0][1]))
    conn.send("COMMAND", "DOCS")
    docs = sort_docs(conn.read())
    cmds = [plain(c) for c in reply[1]]

    cat, info = [], []

    def emit(c):
        name = c[0].lower()
        cats = " ".join(x.lstrip("@") for x in c[6])
        specs, kflags = [], []
        for ks in c[8]:
            kflags.append(" ".join(ks.get("flags", [])))
            f = set(ks.get("flags", []))
            r = "access" in f
            w = bool(f & {"insert", "update", "delete"})
            specs.append("%d" % ((1 if r else 0) | (2 if w else 0)))
        cat.append('\t"%s": {"%s", "%s", %d, "%s"},' % (name, cats, "".join(specs), c[1], "|".join(kflags)))
        ks = ", ".join(keyspec(k) for k in c[8])
        info.append('\t%s: {%d, %s, %d, %d, %d, %s, %s},' % (
            gostr(name), c[1], gostr(" ".join(c[2])), c[3], c[4], c[5], gostr(" ".join(c[7])),
            "[]keySpec{%s}" % ks if ks else "nil"))
        for sub in c[9]:
            emit(sub)

    for c in cmds:
        emit(c)

    doc = []

    def emit_docs(r):
        for k, v in r[1]:
            d = {f[1]: x for f, x in v[1]}
            fields = " ".join(f[1] for f, _ in v[1] if f[1] != "subcommands")
            doc.append('\t%s: {%s, %s, %s, %s, %s, %s, %s, %s},' % (
                gostr(k[1]), gostr(fields), gostr(d["since"][1]), gostr(d["group"][1]),
                gostr(" ".join(x[1] for x in d.get("doc_flags", ("~", []))[1])),
                gostr(d.get("deprecated_since", ("$", ""))[1]), gostr(d.get("replaced_by", ("$", ""))[1]),
                gostr(" ".join(h[1][0][1] for h in d.get("history", ("~", []))[1])),
                gostr(encode(d["arguments"])) if "arguments" in d else '""'))
            if "subcommands" in d:
                emit_docs(d["subcommands"])

    emit_docs(docs)
    with open(os.path.join(here, "..", "cmddocs_gen.go"), "w") as f:
        f.write("""// Code generated by acl/mkcatalog.py from redis-server %s COMMAND DOCS; DO NOT EDIT.

package kv

// redisCommandDocs holds, for every command and subcommand of Redis 7.0,
// the shape and facts of its COMMAND DOCS: the fields Redis gives, in
// order; since, group, doc flags, deprecated since, replaced by, the
// versions of its history; and its arguments (RESP3). The prose (summary,
// complexity, history texts) is gantry's own.
var redisCommandDocs = map[string]commandDocsEntry{
""" % version + "\n".join(doc) + "\n}\n")
    with open(os.path.join(here, "..", "testdata", "redis-command-docs.resp3"), "w", newline="") as f:
        f.write(encode(blank_prose(docs)))

    with open(os.path.join(here, "catalog_gen.go"), "w") as f:
        f.write("""// Code generated by mkcatalog.py from redis-server 7.0 COMMAND INFO; DO NOT EDIT.

package acl

// redisCommands holds, for every command and subcommand of Redis 7
// ("container|sub"), its ACL categories and one digit per key spec:
// 1 reads the keys, 2 writes them, 3 both, 0 neither (EXISTS, TYPE);
// its arity, counting the command's name (negative: at least); and the
// flags of its key specs, "|" between specs (COMMAND GETKEYSANDFLAGS).
var redisCommands = map[string]catalogEntry{
""" + "\n".join(cat) + "\n}\n")

    with open(os.path.join(here, "..", "cmdinfo_gen.go"), "w") as f:
        f.write("""// Code generated by acl/mkcatalog.py from redis-server %s COMMAND INFO; DO NOT EDIT.

package kv

// redisCommandInfo holds, for every command and subcommand of Redis 7.0
// ("container|sub"), what its COMMAND INFO shows besides its name, ACL
// categories (the ACL catalog's) and subcommands: arity, flags, first,
// last and step key positions, tips and key specs.
var redisCommandInfo = map[string]commandInfoEntry{
""" % version + "\n".join(info) + "\n}\n")

    with open(os.path.join(here, "..", "testdata", "redis-command-info.resp3"), "w", newline="") as f:
        f.write(encode(reply))
    subprocess.run(["gofmt", "-w", os.path.join(here, "catalog_gen.go"),
                    os.path.join(here, "..", "cmdinfo_gen.go"),
                    os.path.join(here, "..", "cmddocs_gen.go")], check=True)


main()
