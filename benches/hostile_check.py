import socket, time, sys, os, json, threading

HOST = "127.0.0.1"
PORT = int(sys.argv[1])
PID = int(open(sys.argv[2]).read().strip())

def rss_kb(pid=PID):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])

def fds(pid=PID):
    return len(os.listdir(f"/proc/{pid}/fd"))

def req(raw, timeout=30):
    s = socket.create_connection((HOST, PORT), timeout=timeout)
    s.sendall(raw)
    data = b""
    try:
        while True:
            b = s.recv(65536)
            if not b: break
            data += b
    except (ConnectionResetError, socket.timeout) as e:
        data += b""
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ")[1].decode() if head else "none"
    return status, body

def get(path, method="GET", headers=(), body=b""):
    h = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    for k, v in headers: h += f"{k}: {v}\r\n"
    if body or method in ("POST", "PUT"): h += f"Content-Length: {len(body)}\r\n"
    return req(h.encode() + b"\r\n" + body)

def timed_lookup():
    t = time.time(); st, body = get("/lookup?id=1"); return st, round((time.time()-t)*1000, 1)

print("front end pid", PID, "RSS kB at rest", rss_kb(), "fds", fds())
print("normal lookup", timed_lookup())

# 1. 2,000 slowloris clients trickling headers
N = int(os.environ.get("SLOW", "2000"))
socks = []
for i in range(N):
    s = socket.socket(); s.setblocking(False)
    try: s.connect((HOST, PORT))
    except BlockingIOError: pass
    socks.append(s)
time.sleep(0.5)
for s in socks:
    try: s.send(b"GET /books/1 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    except OSError: pass
peak = 0; peak_fds = 0; lat = []
t0 = time.time()
while time.time() - t0 < 8:
    for s in socks:
        try: s.send(b"a")
        except OSError: pass
    peak = max(peak, rss_kb()); peak_fds = max(peak_fds, fds())
    lat.append(timed_lookup())
    time.sleep(0.5)
print(f"{N} slow clients: peak RSS kB {peak}, peak open fds {peak_fds}, normal lookups during: {lat}")
t0 = time.time(); closed = 0
for s in socks: s.setblocking(True); s.settimeout(60)
for s in socks:
    try:
        while s.recv(4096): pass
        closed += 1
    except (ConnectionResetError, socket.timeout, OSError): closed += 1
print(f"all {closed} slow clients closed by the server within {round(time.time()-t0,1)} s more")
for s in socks: s.close()
time.sleep(2)
print("after they left: RSS kB", rss_kb(), "fds", fds())

# 2. 600 clients each sending 400 KB of unfinished header
big = []
res = {}
def hog(i):
    try:
        s = socket.create_connection((HOST, PORT), timeout=30)
        s.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 400_000)
    except OSError as e:
        res[i] = "send stopped: " + type(e).__name__; return
    try:
        d = s.recv(100); res[i] = d[:12].decode(errors="replace")
    except OSError as e: res[i] = type(e).__name__
    big.append(s)
ts = [threading.Thread(target=hog, args=(i,)) for i in range(600)]
for t in ts: t.start()
peak = 0
for _ in range(10):
    peak = max(peak, rss_kb()); time.sleep(0.3)
for t in ts: t.join()
from collections import Counter
print("600 x 400 KB headers: answers", Counter(res.values()), "peak RSS kB", peak)
for s in big: s.close()
time.sleep(2)
print("after they left: RSS kB", rss_kb(), "fds", fds())
print("normal lookup", timed_lookup())
