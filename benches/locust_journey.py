"""The Locust side of `benches/vs_goose.py`: one SCIM journey per task, nothing else.

Each task is one journey with the bodies provbench's bench workload sends: POST /Users (the
create's `id` read from its answer), GET /Users/{id} (provbench reads a created user once
before its first change), PATCH replace `title`, PATCH `active` false, DELETE /Users/{id}. Run headless by the bench, which sets the load on the command line (`-u`, `-r`,
`-t`, `--host`) and the rest in the environment:

- `SCIM_TOKEN`: the bearer token;
- `JOURNEY_RATE`: journeys per second for all users together (each user keeps
  `constant_throughput(JOURNEY_RATE / users)`);
- `JOURNEY_CONNECTION_CLOSE=1`: a connection per request (`Connection: close`);
- `JOURNEY_RUN`: the marker in user names (default `lc-bench`).

At the end it prints one line, `journey-bench {"journeys": N, "errors": E}`: journeys whose four
answers were 2xx, and journeys that failed. Not part of provbench: only for loopback targets the
bench started.

    SCIM_TOKEN=t JOURNEY_RATE=200 locust -f benches/locust_journey.py --headless -u 20 -r 100 -t 20s \\
        --host http://127.0.0.1:8080/scim/v2 --only-summary
"""

import itertools
import json
import os

from locust import HttpUser, constant_throughput, events, task

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
RUN = os.environ.get("JOURNEY_RUN", "lc-bench")
CLOSE = os.environ.get("JOURNEY_CONNECTION_CLOSE") == "1"
SEQ = itertools.count(1)
COUNTS = {"journeys": 0, "errors": 0}


class Failed(Exception):
    pass


class Admin(HttpUser):
    # Set from JOURNEY_RATE and the user count once the test starts (see `on_test_start`).
    wait_time = constant_throughput(1)

    def on_start(self):
        self.client.headers.update({
            "Authorization": "Bearer " + os.environ.get("SCIM_TOKEN", ""),
            "Accept": "application/scim+json",
            "Content-Type": "application/scim+json",
        })
        if CLOSE:
            self.client.headers["Connection"] = "close"

    def send(self, method, path, name, body=None):
        with self.client.request(method, path, name=name, data=None if body is None else json.dumps(body),
                                 catch_response=True, allow_redirects=False) as r:
            if not 200 <= r.status_code < 300:
                r.failure(f"HTTP {r.status_code}")
                raise Failed(f"{name}: HTTP {r.status_code} {r.error or r.text[:120]}")
            return r

    @task
    def journey(self):
        try:
            self.steps()
            COUNTS["journeys"] += 1
        except Exception as e:  # a status, a connection error, an answer without an id
            COUNTS["errors"] += 1
            COUNTS.setdefault("first_error", f"{type(e).__name__}: {e}"[:300])

    def steps(self):
        seq = next(SEQ)
        name = f"{RUN}-{seq}@example.test"
        created = self.send("POST", "/Users", "POST /Users", {
            "schemas": [USER_SCHEMA], "userName": name, "externalId": f"{RUN}-{seq}",
            "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
            "displayName": "Ada Lovelace", "emails": [{"value": name, "type": "work", "primary": True}],
            "active": True})
        path = "/Users/" + created.json()["id"]
        self.send("GET", path, "GET /Users/{id}")
        self.send("PATCH", path, "PATCH /Users/{id}", {
            "schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": f"Title {seq}"}]})
        self.send("PATCH", path, "PATCH /Users/{id}", {
            "schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": False}]})
        self.send("DELETE", path, "DELETE /Users/{id}")


@events.test_start.add_listener
def on_test_start(environment, **_):
    users = max(1, environment.parsed_options.num_users or 1)
    rate = float(os.environ.get("JOURNEY_RATE", "1"))
    Admin.wait_time = constant_throughput(rate / users)


@events.quitting.add_listener
def on_quitting(environment, **_):
    print("journey-bench " + json.dumps(COUNTS), flush=True)
