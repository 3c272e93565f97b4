# Times a Lambda binary's init on this machine: from exec to its first GET .../invocation/next on
# a minimal Runtime API on loopback. Median of N runs. AWS endpoints point at a closed local
# port: init builds clients but makes no calls.
import http.server, subprocess, sys, threading, time, os, statistics, socket
binary, runs = sys.argv[1], int(sys.argv[2])
def free_port():
    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close(); return p
results = []
for _ in range(runs):
    got = threading.Event(); stamp = {}
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.endswith('/invocation/next') and not got.is_set():
                stamp['t'] = time.perf_counter(); got.set()
            self.send_response(503); self.end_headers()
        def log_message(self, *a): pass
    port = free_port()
    server = http.server.ThreadingHTTPServer(('127.0.0.1', port), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}", AWS_LAMBDA_FUNCTION_NAME="f",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256", AWS_LAMBDA_FUNCTION_VERSION="1", AWS_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_ENDPOINT_URL="http://127.0.0.1:9",
               TABLE_NAME="t", EVENT_BUS_NAME="b", PAYMENT_QUEUE_URL="http://127.0.0.1:9/q",
               PAYMENT_WEBHOOK_SECRETS="0123456789abcdef", NOTIFICATION_QUEUE_URL="http://127.0.0.1:9/n", PERSONAL_DATA_KEY_ID="k", RUST_LOG="error")
    t0 = time.perf_counter()
    p = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = got.wait(10)
    p.kill(); p.wait(); server.shutdown()
    if ok: results.append((stamp['t'] - t0) * 1000)
print(f"{os.path.basename(binary)}: median {statistics.median(results):.1f} ms, min {min(results):.1f} ms over {len(results)} runs")
