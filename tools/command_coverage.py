#!/usr/bin/python3
# Prints docs/COMMANDS.md's table: Redis 7 commands of the string, bitmap, generic, transactions,
# connection and server groups and whether ringkv has them. Needs redis-server on port 16390 and
# ringkv-server on 16391 (both started by hand).
import redis, sys
r = redis.Redis(port=16390); k = redis.Redis(port=16391)
def docs(c):
    conn = c.connection_pool.get_connection("COMMAND")
    conn.send_command("COMMAND", "DOCS")
    raw = conn.read_response()
    out = {}
    for i in range(0, len(raw), 2):
        name = raw[i].decode(); d = raw[i+1]
        dd = {d[j].decode() if isinstance(d[j], bytes) else d[j]: d[j+1] for j in range(0, len(d), 2)}
        out[name] = dd
        subs = dd.get("subcommands")
        if subs:
            for j in range(0, len(subs), 2):
                sd = subs[j+1]
                out[subs[j].decode()] = {sd[x].decode(): sd[x+1] for x in range(0, len(sd), 2)}
    return out
rd, kd = docs(r), docs(k)
groups = ["string", "bitmap", "generic", "transactions", "connection", "server"]
print("| group | command | ringkv |")
print("| --- | --- | --- |")
tot = {}
for g in groups:
    names = sorted(n for n, d in rd.items() if (d.get("group") or b"").decode() == g)
    for n in names:
        has = n in kd
        tot.setdefault(g, [0, 0]); tot[g][0] += has; tot[g][1] += 1
        print("| %s | %s | %s |" % (g, n.upper().replace("|", " "), "yes" if has else "no"))
print(file=sys.stderr)
for g, (a, b) in tot.items(): print(g, a, "of", b, file=sys.stderr)
