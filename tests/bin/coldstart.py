# Times a Lambda binary on this machine against a minimal Runtime API on loopback, median of N runs:
#   init:         exec to its first GET .../invocation/next;
#   first invoke: that GET answered with EVENT_FILE's event, to the function's POST of its
#                 response or error (only when an event file is given).
# AWS endpoints point at the same loopback server, which refuses every AWS call at once with a
# 400 ValidationException (never retried): init builds clients but makes no calls, and what a
# first invoke measures is the function's own work around its first call, such as anything left
# lazy at init (credentials, endpoint resolution, connection set-up), not AWS's latency.
# With --beside REFERENCE, a run of the reference binary (init only) precedes each run of BINARY,
# and the line ends with the reference's median and BINARY's init as a multiple of it: a ratio
# of runs made side by side, which whatever else the machine is doing affects alike.
# Usage: coldstart.py [--beside REFERENCE] BINARY RUNS [EVENT_FILE]
import http.server, subprocess, sys, threading, time, os, statistics, socket, json, tempfile

args = sys.argv[1:]
reference = None
if args[:1] == ['--beside']:
    reference, args = args[1], args[2:]
binary, runs = args[0], int(args[1])
event = open(args[2], 'rb').read() if len(args) > 2 else None
name = os.path.basename(binary)


def free_port():
    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close(); return p


def one_run(binary, event):
    """(init ms, first invoke ms or None), or a string saying why the binary never asked for work."""
    asked, answered, stamp = threading.Event(), threading.Event(), {}

    class Runtime(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if not self.path.endswith('/invocation/next'):
                return self.refuse_aws_call()
            if asked.is_set():  # a second request for work: hold it until the run ends
                time.sleep(30); return
            stamp['init'] = time.perf_counter(); asked.set()
            if event is None:
                self.send_response(503); self.end_headers(); return
            self.send_response(200)
            self.send_header('Lambda-Runtime-Aws-Request-Id', 'req-1')
            self.send_header('Lambda-Runtime-Deadline-Ms', str(int(time.time() * 1000) + 30000))
            self.send_header('Lambda-Runtime-Invoked-Function-Arn', 'arn:aws:lambda:us-east-1:000000000000:function:f')
            self.send_header('Lambda-Runtime-Trace-Id', 'Root=1-00000000-000000000000000000000000')
            self.send_header('Content-Length', str(len(event)))
            self.end_headers(); self.wfile.write(event)
            stamp['served'] = time.perf_counter()

        def do_POST(self):
            self.rfile.read(int(self.headers.get('Content-Length') or 0))
            if not self.path.startswith('/2018-06-01/runtime/'):
                return self.refuse_aws_call()
            if '/invocation/' in self.path and not answered.is_set():
                stamp['answered'] = time.perf_counter(); answered.set()
            self.send_response(202); self.end_headers()

        def refuse_aws_call(self):
            body = b'{"__type":"com.amazon.coral.validate#ValidationException","message":"cold-start bench"}'
            self.send_response(400)
            self.send_header('Content-Type', 'application/x-amz-json-1.0')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers(); self.wfile.write(body)

        def do_PUT(self):
            self.rfile.read(int(self.headers.get('Content-Length') or 0))
            self.refuse_aws_call()

        def do_HEAD(self):
            self.send_response(404); self.end_headers()

        def log_message(self, *a):
            pass

    port = free_port()
    # A backlog for every connection a function opens at once (hold-expiry sweeps 16 buckets in
    # parallel): with socketserver's default of 5 the kernel drops the rest's SYNs and the
    # client's retransmission adds a whole second to the first invoke.
    server_class = type('Server', (http.server.ThreadingHTTPServer,), {'request_queue_size': 128})
    server = server_class(('127.0.0.1', port), Runtime)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}", AWS_LAMBDA_FUNCTION_NAME="f",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256", AWS_LAMBDA_FUNCTION_VERSION="1", AWS_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
               TABLE_NAME="t", EVENT_BUS_NAME="b", PAYMENT_QUEUE_URL=f"http://127.0.0.1:{port}/q",
               PAYMENT_WEBHOOK_SECRETS="0123456789abcdef", NOTIFICATION_QUEUE_URL=f"http://127.0.0.1:{port}/n",
               COURIER_WEBHOOK_SECRETS="SF:0123456789abcdef", COURIER_GATEWAY_URL=f"http://127.0.0.1:{port}",
               PAYMENT_PROVIDER_URL=f"http://127.0.0.1:{port}", EVIDENCE_PHOTO_BUCKET="evidence",
               DISPATCH_PHOTO_BUCKET="dispatch", PERSONAL_DATA_KEY_ID="k", RUST_LOG="error")
    with tempfile.TemporaryFile() as stderr:
        t0 = time.perf_counter()
        p = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.perf_counter() + 10
        while not asked.wait(0.01):
            if p.poll() is not None or time.perf_counter() > deadline:
                break
        if asked.is_set() and event is not None:
            answered.wait(10)
        p.kill(); p.wait(); server.shutdown(); server.server_close()
        if not asked.is_set():
            stderr.seek(0)
            last = (stderr.read().decode(errors='replace').strip().splitlines() or ['(nothing)'])[-1]
            return f"never asked for work (exit {p.returncode}): {last[:200]}"
    first = (stamp['answered'] - stamp['served']) * 1000 if 'answered' in stamp else None
    return (stamp['init'] - t0) * 1000, first


def init_of(binary, event):
    """One run's (init ms, first invoke ms or None); a binary that never asks for work ends the script."""
    result = one_run(binary, event)
    if isinstance(result, str):
        print(f"{os.path.basename(binary)}: {result}")
        sys.exit(1)
    return result


inits, firsts, references = [], [], []
for _ in range(runs):
    if reference is not None:
        references.append(init_of(reference, None)[0])
    init, first = init_of(binary, event)
    inits.append(init)
    if first is not None:
        firsts.append(first)
line = f"{name}: init median {statistics.median(inits):.1f} ms, min {min(inits):.1f} ms over {len(inits)} runs"
if event is not None:
    line += (f"; first invoke median {statistics.median(firsts):.1f} ms over {len(firsts)}" if firsts
             else "; first invoke: no answer within 10 s")
if references:
    beside = statistics.median(references)
    line += (f"; beside {os.path.basename(reference)}: {beside:.1f} ms,"
             f" ratio {statistics.median(inits) / beside:.2f}x")
print(line)
