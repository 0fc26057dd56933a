"""The seed document's Python examples, as written, against a running gateway.

    npx sollol sim --port 11435 &
    npx sollol up --port 23000 --backend http://127.0.0.1:11435 &
    python3 scripts/seed_examples.py http://localhost:23000
"""
import sys
import time

import requests

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://localhost:11434"

# Quick start 1-3
response = requests.post(f"{BASE}/api/batch/embed", json={
    "model": "nomic-embed-text",
    "documents": ["Document 1 content here", "Document 2 content here"],
    "metadata": {"source": "knowledge_base"},
})
job_id = response.json()["job_id"]
print(f"Job submitted: {job_id}")
status = requests.get(f"{BASE}/api/batch/jobs/{job_id}").json()
print(f"Status: {status['status']}")
print(f"Progress: {status['progress']['percent']}%")
print(f"Completed: {status['progress']['completed_items']}/{status['progress']['total_items']}")
time.sleep(1)
results = requests.get(f"{BASE}/api/batch/results/{job_id}").json()
embeddings = results["results"]
errors = results["errors"]
print(f"Got {len(embeddings)} results")

# Example 1: a large collection, polled to completion
docs = [f"Document {i} content..." for i in range(5000)]
response = requests.post(f"{BASE}/api/batch/embed", json={"model": "nomic-embed-text", "documents": docs, "metadata": {"collection": "research_papers"}})
job_id = response.json()["job_id"]
while True:
    status = requests.get(f"{BASE}/api/batch/jobs/{job_id}").json()
    if status["status"] in ["completed", "failed", "cancelled"]:
        break
    print(f"Progress: {status['progress']['percent']:.1f}%")
    time.sleep(0.2)
if status["status"] == "completed":
    results = requests.get(f"{BASE}/api/batch/results/{job_id}").json()
    print(f"Embedded {len(results['results'])} documents in {status['duration_seconds']:.2f}s")
else:
    print(f"Job {status['status']}: {status.get('errors')}")

# Example 3: several jobs
job_ids = []
for batch in [docs[:100], docs[100:200], docs[200:300]]:
    response = requests.post(f"{BASE}/api/batch/embed", json={"model": "nomic-embed-text", "documents": batch})
    job_ids.append(response.json()["job_id"])
while job_ids:
    for job_id in list(job_ids):
        status = requests.get(f"{BASE}/api/batch/jobs/{job_id}").json()
        if status["status"] == "completed":
            print(f"Job {job_id} complete!")
            job_ids.remove(job_id)
        elif status["status"] in ["failed", "cancelled"]:
            print(f"Job {job_id} {status['status']}")
            job_ids.remove(job_id)
    time.sleep(0.2)
print("All jobs finished!")

# Error handling: too many documents, expired job, metadata round trip, stats
too_many = requests.post(f"{BASE}/api/batch/embed", json={"model": "nomic-embed-text", "documents": ["x"] * 15000})
assert too_many.status_code == 400 and too_many.json()["detail"] == "Maximum 10,000 documents per batch. Got 15,000.", too_many.text
try:
    missing = requests.get(f"{BASE}/api/batch/jobs/00000000-0000-4000-8000-000000000000")
    missing.raise_for_status()
except requests.HTTPError as e:
    if e.response.status_code == 404:
        print("Job expired or not found")
response = requests.post(f"{BASE}/api/batch/embed", json={"model": "nomic-embed-text", "documents": docs[:10], "metadata": {"collection": "research_papers", "user_id": "user123", "batch_num": 5, "total_batches": 10}})
status = requests.get(f"{BASE}/api/batch/jobs/{response.json()['job_id']}").json()
print(f"Batch {status['metadata']['batch_num']}/{status['metadata']['total_batches']}")
stats = requests.get(f"{BASE}/api/stats").json()
batch_stats = stats["batch_jobs"]
print(f"Total jobs created: {batch_stats['total_jobs_created']}")
print(f"Total completed: {batch_stats['total_jobs_completed']}")
print(f"Total failed: {batch_stats['total_jobs_failed']}")
print(f"Active jobs: {batch_stats['active_jobs']}")
print(f"Pending jobs: {batch_stats['pending_jobs']}")
print("seed examples: all ran")
