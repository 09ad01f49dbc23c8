-- wrk script: POST an image request (used by benchmarks/serve_bench.py)
wrk.method = "POST"
wrk.body = '{"prompt": "a red circle left of a blue square", "size": "1024x1024"}'
wrk.headers["Content-Type"] = "application/json"
