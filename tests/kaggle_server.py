"""A fake Kaggle on loopback that the real ``kaggle`` client talks to, plus the pytest fixture that points it there.

The server speaks the endpoints kit uses: ``POST /api/v1/competitions.CompetitionApiService/<Method>`` with camelCase
JSON (ListDataFiles, DownloadDataFiles -> 302 to a file with Range support, StartSubmissionUpload, CreateSubmission,
CreateCodeSubmission (a notebook version's output; ``code_submissions`` keeps each request), ListSubmissions,
GetLeaderboard), the upload ``PUT`` to the URL StartSubmissionUpload returned, and
``security.OAuthService/IntrospectToken``. The client reaches it unchanged: ``KAGGLE_API_ENVIRONMENT=LOCALHOST``
sends its requests to http://localhost/api/v1 and ``HTTP_PROXY`` routes them to this server's port (it answers
absolute-URI proxy requests itself). Failures are injected per method with `FakeKaggle.fail`.

The `kaggle_env` fixture gives each test its own HOME/KAGGLE_CONFIG_DIR with a kaggle.json, clears every other
KAGGLE_* variable, sets ``KIT_KAGGLE_BACKOFF=0``, and makes name resolution refuse anything but loopback, so no
test can reach the real Kaggle service. The `raw` fixture puts the competition's files in place (as after
`kit download`); `run_cli`, `make_csv` and `api_calls` are the helpers the Kaggle tests share.

Example:
    from kaggle_server import kaggle_env  # noqa: F401  (a fixture)

    def test_list(kaggle_env):
        kaggle_env.server.fail("ListDataFiles", 500)
        assert Kaggle().list_files(kaggle_env.slug)
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import datetime
import email.utils
import io
import json
import os
import shutil
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest

__all__ = [
    "FakeKaggle",
    "KaggleEnv",
    "kaggle_env",
    "raw",
    "zip_folder",
    "run_cli",
    "make_csv",
    "api_calls",
    "SLUG",
    "USERNAME",
    "TEAM",
]

SLUG = "histopathologic-cancer-detection"
USERNAME = "kit-tester"
TEAM = "kit team"
_LIMIT_MESSAGE = (
    "Submission not allowed:  Your team has used its daily Submission allowance ({n}) today, please "
    "try again tomorrow UTC."
)


def zip_folder(folder: Path) -> bytes:
    """The folder's files as a zip archive (members relative to ``folder``), in memory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _iso(when: datetime.datetime) -> str:
    return when.isoformat(timespec="milliseconds") + "Z"


class FakeKaggle:
    """State and fault injection of the fake Kaggle; ``calls`` lists every method seen, in order."""

    def __init__(self, username: str, key: str, archives: dict[str, bytes]):
        self.username, self.key, self.archives = username, key, archives
        self.submissions: dict[str, list[dict]] = {slug: [] for slug in archives}
        self.other_teams: dict[str, list[tuple[str, float]]] = {slug: [] for slug in archives}
        self.uploads: dict[str, dict] = {}
        self.datasets: dict[str, list[dict]] = {}  # "owner/slug" -> versions, each {"files": {name: bytes}}
        self.kernels: list[dict] = []  # every SaveKernel request body
        self.kernel_runs: dict[str, dict] = {}  # "owner/slug" -> the latest run, set by finish_kernel
        self.code_submissions: list[dict] = []  # every accepted CreateCodeSubmission request body
        self.calls: list[str] = []
        self.ranges: list[str | None] = []
        self.daily_limit = 5
        self._faults: dict[str, list] = {}
        self._lock = threading.Lock()
        self._next = 1000
        self._next_script: list[dict] = []  # steps the next submission goes through (script_next)
        self.last_modified = email.utils.formatdate(1_700_000_000, usegmt=True)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> FakeKaggle:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail(self, method: str, *actions) -> None:
        """Queue failures for ``method`` (an API method, "Upload" for the PUT, "File" for the file GET): an HTTP
        status, ``(status, headers)``, "drop" (close without answering) or "lost_reply" (do the work, then close)."""
        with self._lock:
            self._faults.setdefault(method, []).extend(actions)

    def _take_fault(self, method: str):
        with self._lock:
            queue = self._faults.get(method) or []
            return queue.pop(0) if queue else None

    def add_submission(
        self,
        slug: str,
        file_name: str,
        description: str,
        status: str = "PENDING",
        public: float | None = None,
        private: float | None = None,
    ) -> dict:
        with self._lock:
            self._next += 1
            sub = {
                "ref": self._next,
                "date": _utcnow(),
                "fileName": file_name,
                "description": description,
                "status": status,
                "public": public,
                "private": private,
                "script": self._next_script,
            }
            self._next_script = []
            self.submissions[slug].insert(0, sub)
        return sub

    def script_next(self, slug: str, *steps: dict) -> None:
        """Let the next submission change as Kaggle scores it: each ListSubmissions call applies the next step, e.g.
        ``{"status": "COMPLETE", "public": 0.97}`` or ``{"status": "ERROR", "error": "bad header"}``."""
        with self._lock:
            self._next_script = list(steps)

    def finish_kernel(
        self, ref: str, status: str = "COMPLETE", output: bytes | None = None, log: str = "", failure: str = ""
    ) -> None:
        """End the latest run of the kernel ``ref`` ("owner/slug"): its status (COMPLETE, ERROR, RUNNING, ...),
        Kaggle's failure message, its log, and its output, /kaggle/working as a zip (each member listed as a file)."""
        with self._lock:
            self.kernel_runs[ref] = {"status": status, "failure": failure, "log": log, "output": output or b""}

    def _kernel_api(self, method: str, body: dict):
        """A kernel's latest run: GetKernelSessionStatus, ListKernelSessionOutput (files served by GET)."""
        ref = f"{body.get('userName')}/{body.get('kernelSlug')}"
        run = self.kernel_runs.get(ref)
        if run is None:
            return 404, {"code": 404, "message": f"Kernel '{ref}' not found"}
        if method == "GetKernelSessionStatus":
            return 200, {"status": run["status"], "failureMessage": run["failure"]}
        with zipfile.ZipFile(io.BytesIO(run["output"])) if run["output"] else contextlib.nullcontext() as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()] if zf else []
        files = [{"fileName": n, "url": f"http://localhost/kernel-output/{ref}/{n}"} for n in names]
        return 200, {"files": files, "log": run["log"], "nextPageToken": ""}

    def kernel_file(self, path: str) -> bytes | None:
        """The output file ``owner/slug/<name>`` of a kernel's latest run, or None."""
        owner, slug, name = path.split("/", 2)
        run = self.kernel_runs.get(f"{owner}/{slug}")
        if run is None or not run["output"]:
            return None
        with zipfile.ZipFile(io.BytesIO(run["output"])) as zf:
            return zf.read(name) if name in zf.namelist() else None

    def score_all(self, slug: str, public: list[float], private: list[float] | None = None) -> None:
        """Mark the submissions complete with these scores, oldest first."""
        for k, sub in enumerate(reversed(self.submissions[slug])):
            sub.update(status="COMPLETE", public=public[k], private=None if private is None else private[k])

    # ---- endpoint implementations: return (status, json body) ----
    def _submission_json(self, sub: dict) -> dict:
        def score(value):
            return "" if value is None else f"{value:.5f}"

        return {
            "ref": sub["ref"],
            "date": _iso(sub["date"]),
            "fileName": sub["fileName"],
            "description": sub["description"],
            "status": sub["status"],
            "publicScore": score(sub["public"]),
            "privateScore": score(sub["private"]),
            "teamName": TEAM,
            "submittedBy": self.username,
            "errorDescription": sub.get("error", ""),
        }

    def _dataset_api(self, method: str, body: dict):
        """Datasets and kernels: the calls `kit kernel push` makes."""
        if method == "StartBlobUpload":
            token = f"blob-{len(self.uploads) + 1}"
            self.uploads[token] = {"fileName": body.get("name"), "data": None}
            return 200, {"token": token, "createUrl": f"http://localhost/upload/{token}"}
        if method in ("CreateDataset", "CreateDatasetVersion"):
            inner = body.get("body", body)
            ref = f"{body.get('ownerSlug')}/{body.get('slug') or body.get('datasetSlug')}"
            if method == "CreateDatasetVersion" and ref not in self.datasets:
                return 404, {"code": 404, "message": f"Dataset '{ref}' not found"}
            files = {}
            for item in inner.get("files") or []:
                upload = self.uploads.get(item.get("token"))
                if not upload or upload["data"] is None:
                    return 400, {"code": 400, "message": "The uploaded file was not found"}
                files[upload["fileName"]] = upload["data"]
            self.datasets.setdefault(ref, []).append({"files": files, "private": body.get("isPrivate")})
            return 200, {"ref": ref, "url": f"https://www.kaggle.com/datasets/{ref}", "status": "Ok", "error": ""}
        if method == "GetDatasetStatus":
            ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
            if ref not in self.datasets:
                return 404, {"code": 404, "message": f"Dataset '{ref}' not found"}
            return 200, {"status": "ready"}
        if method == "SaveKernel":
            self.kernels.append(body)
            slug = str(body.get("slug") or "").rsplit("/", 1)[-1]
            return 200, {
                "ref": f"/code/{self.username}/{slug}",
                "url": f"https://www.kaggle.com/code/{self.username}/{slug}",
                "versionNumber": len(self.kernels),
                "error": "",
            }
        return None

    def api(self, method: str, body: dict):
        slug = body.get("competitionName")
        if method == "IntrospectToken":
            return 200, {"active": body.get("token") == self.key, "username": self.username}
        answer = self._dataset_api(method, body)
        if answer is not None:
            return answer
        if method in ("GetKernelSessionStatus", "ListKernelSessionOutput"):
            return self._kernel_api(method, body)
        if slug not in self.archives:
            return 404, {"code": 404, "message": f"Competition '{slug}' not found"}
        if method == "ListDataFiles":
            with zipfile.ZipFile(io.BytesIO(self.archives[slug])) as zf:
                files = [{"name": i.filename, "totalBytes": i.file_size} for i in zf.infolist() if not i.is_dir()]
            return 200, {"files": files, "nextPageToken": ""}
        if method == "StartSubmissionUpload":
            token = f"blob-{len(self.uploads) + 1}"
            self.uploads[token] = {"fileName": body.get("fileName"), "data": None}
            return 200, {"token": token, "createUrl": f"http://localhost/upload/{token}"}
        if method == "CreateSubmission":
            upload = self.uploads.get(body.get("blobFileTokens"))
            if not upload or upload["data"] is None:
                return 400, {"code": 400, "message": "The uploaded file was not found"}
            today = _utcnow().date()
            if sum(s["date"].date() == today for s in self.submissions[slug]) >= self.daily_limit:
                return 400, {"code": 400, "message": _LIMIT_MESSAGE.format(n=self.daily_limit)}
            sub = self.add_submission(slug, upload["fileName"], body.get("submissionDescription", ""))
            sub["data"] = upload["data"]
            return 200, {"message": "Successfully submitted to Histopathologic Cancer Detection", "ref": sub["ref"]}
        if method == "CreateCodeSubmission":
            if not body.get("kernelOwner") or not body.get("kernelSlug"):
                return 400, {"code": 400, "message": "A kernel owner and slug are required"}
            today = _utcnow().date()
            if sum(s["date"].date() == today for s in self.submissions[slug]) >= self.daily_limit:
                return 400, {"code": 400, "message": _LIMIT_MESSAGE.format(n=self.daily_limit)}
            sub = self.add_submission(
                slug, body.get("fileName") or "submission.csv", body.get("submissionDescription", "")
            )
            sub["kernel"] = f"{body['kernelOwner']}/{body['kernelSlug']}"
            sub["version"] = body.get("kernelVersion")
            self.code_submissions.append(body)
            return 200, {"message": "Successfully submitted to Histopathologic Cancer Detection", "ref": sub["ref"]}
        if method == "ListSubmissions":
            page, size = int(body.get("page") or 1), int(body.get("pageSize") or 20)
            subs = self.submissions[slug][(page - 1) * size : page * size]
            for sub in subs:
                if sub.get("script"):
                    sub.update(sub["script"].pop(0))
            return 200, {"submissions": [self._submission_json(s) for s in subs], "nextPageToken": ""}
        if method == "GetLeaderboard":
            ours = [
                s["public"] for s in self.submissions[slug] if s["status"] == "COMPLETE" and s["public"] is not None
            ]
            teams = list(self.other_teams[slug]) + ([(TEAM, max(ours))] if ours else [])
            teams.sort(key=lambda t: -t[1])
            start, size = int(body.get("pageToken") or 0), int(body.get("pageSize") or 20)
            rows = [
                {
                    "teamId": k + 1,
                    "teamName": name,
                    "submissionDate": _iso(datetime.datetime(2026, 1, 1)),
                    "score": f"{score:.5f}",
                }
                for k, (name, score) in enumerate(teams)
            ][start : start + size]
            token = str(start + size) if start + size < len(teams) else ""
            return 200, {"submissions": rows, "nextPageToken": token}
        if method == "DownloadDataFiles":
            return 302, {"location": f"http://localhost/files/{slug}.zip"}
        return 501, {"code": 501, "message": f"fake Kaggle does not implement {method}"}

    def authorized(self, header: str | None) -> bool:
        basic = "Basic " + base64.b64encode(f"{self.username}:{self.key}".encode()).decode()
        return header in (basic, f"Bearer {self.key}")

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict | None = None, ctype="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _fault(self, method: str) -> tuple[bool, object]:
                """Apply a queued fault; returns (handled, fault)."""
                fault = server._take_fault(method)
                if fault is None or fault == "lost_reply":
                    return False, fault
                if fault == "drop":
                    self.close_connection = True
                    return True, fault
                status, headers = fault if isinstance(fault, tuple) else (fault, {})
                self._send(status, json.dumps({"code": status, "message": f"injected {status}"}).encode(), headers)
                return True, fault

            def do_POST(self):
                path = urlsplit(self.path).path
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                method = path.rsplit("/", 1)[-1]
                server.calls.append(method)
                handled, fault = self._fault(method)
                if handled:
                    return
                if method != "IntrospectToken" and not server.authorized(self.headers.get("Authorization")):
                    return self._send(401, json.dumps({"code": 401, "message": "Unauthenticated"}).encode())
                status, payload = server.api(method, body)
                if fault == "lost_reply":
                    self.close_connection = True
                    return
                if status == 302:
                    return self._send(302, b"", {"Location": payload["location"]})
                self._send(status, json.dumps(payload).encode())

            def do_PUT(self):
                token = urlsplit(self.path).path.rsplit("/", 1)[-1]
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.calls.append("Upload")
                if self._fault("Upload")[0]:
                    return
                if token not in server.uploads:
                    return self._send(404, b"{}")
                upload, span = server.uploads[token], self.headers.get("Content-Range", "")
                if span.startswith("bytes */"):  # a resumable upload asking how much arrived: it all did, or none
                    done = upload["data"] is not None and len(upload["data"]) == int(span[8:])
                    return self._send(200 if done else 308, b"{}")
                upload["data"] = data
                self._send(200, b"{}")

            def do_GET(self):
                if urlsplit(self.path).path.startswith("/kernel-output/"):  # a kernel's output file
                    server.calls.append("KernelFile")
                    data = server.kernel_file(urlsplit(self.path).path[len("/kernel-output/") :])
                    return self._send(404, b"{}") if data is None else self._send(200, data, ctype="text/plain")
                slug = urlsplit(self.path).path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
                server.calls.append("File")
                server.ranges.append(self.headers.get("Range"))
                if self._fault("File")[0]:
                    return
                data = server.archives.get(slug)
                if data is None:
                    return self._send(404, b"{}")
                headers = {"Accept-Ranges": "bytes", "ETag": f'"{slug}-v1"', "Last-Modified": server.last_modified}
                wanted = self.headers.get("Range")
                if wanted and self.headers.get("If-Range") in (None, headers["ETag"]):
                    start = int(wanted.split("=")[1].split("-")[0])
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                    self.send_response(206)
                    self.send_header("Content-Type", "application/zip")
                    self.send_header("Content-Length", str(len(data) - start))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data[start:])
                    return
                self._send(200, data, headers, ctype="application/zip")

        return Handler


@dataclasses.dataclass
class KaggleEnv:
    """What the fixture set up: the server, the fake home with its kaggle.json, and the secret to look for."""

    server: FakeKaggle
    home: Path
    config: Path
    key: str
    root: Path
    slug: str = SLUG

    def remove_credentials(self) -> None:
        self.config.unlink()


def _loopback_only(real):
    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in ("localhost", "127.0.0.1", "::1"):
            raise OSError(f"test guard: refused to resolve {name!r}; tests stay on loopback")
        return real(host, *args, **kwargs)

    return getaddrinfo


@pytest.fixture
def kaggle_env(tmp_path, monkeypatch, synth_pcam_master) -> KaggleEnv:
    """A fake Kaggle serving the synthetic PCam archive, and an environment where only it can be reached."""
    key = "k1t" + os.urandom(12).hex()
    home = tmp_path / "home"
    config = home / ".kaggle" / "kaggle.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"username": USERNAME, "key": key}))
    config.chmod(0o600)
    for name in list(os.environ):
        if name.startswith("KAGGLE_") or name.lower() in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
            monkeypatch.delenv(name)
    server = FakeKaggle(USERNAME, key, {SLUG: zip_folder(synth_pcam_master)}).start()
    proxy = f"http://127.0.0.1:{server.port}"
    for name, value in {
        "HOME": str(home),
        "KAGGLE_CONFIG_DIR": str(config.parent),
        "XDG_CONFIG_HOME": str(home),
        "KAGGLE_API_ENVIRONMENT": "LOCALHOST",
        "HTTP_PROXY": proxy,
        "http_proxy": proxy,
        "HTTPS_PROXY": proxy,
        "https_proxy": proxy,
        "KIT_KAGGLE_BACKOFF": "0",
        "KIT_KAGGLE_RETRIES": "3",
        "KIT_DATA_DIR": str(tmp_path / "data"),
        "KIT_SUBMISSIONS_DIR": str(tmp_path / "submissions"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(socket, "getaddrinfo", _loopback_only(socket.getaddrinfo))
    try:
        yield KaggleEnv(server, home, config, key, tmp_path)
    finally:
        server.stop()


@pytest.fixture
def raw(kaggle_env, synth_pcam_master) -> Path:
    """The competition files already in place (as after `kit download`)."""
    return Path(shutil.copytree(synth_pcam_master, kaggle_env.root / "data" / "pcam" / "raw"))


def run_cli(argv: list[str]) -> int:
    """What kit.cli.main.main does with the Kaggle verbs: exit 2 on KitError (the error printed to stdout here)."""
    from kit.cli.kaggle_verbs import add_kaggle_verbs
    from kit.errors import KitError

    parser = argparse.ArgumentParser(prog="kit")
    verbs = parser.add_subparsers(dest="verb", required=True)
    add_kaggle_verbs(verbs, lambda name, help, epilog: verbs.add_parser(name, help=help, epilog=epilog))
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except KitError as e:
        print(f"kit {args.verb}: error: {e}")
        return 2
    return 0


def make_csv(raw: Path, folder: Path, name="sub", cv=0.9712, runs=("runs/pcam/20260101-000000_cnn",)) -> Path:
    """A valid submission for the synthetic competition in ``raw``, with a sidecar (unless ``cv`` is None)."""
    ids = pd.read_csv(raw / "sample_submission.csv", dtype=str)["id"]
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / f"{name}.csv"
    pd.DataFrame({"id": ids, "label": [(k % 10) / 10 + 0.05 for k in range(len(ids))]}).to_csv(csv, index=False)
    if cv is not None:
        csv.with_suffix(".json").write_text(json.dumps({"cv_score": cv, "runs": list(runs)}))
    return csv


def api_calls(server: FakeKaggle) -> list[str]:
    """The API methods the server saw, without the sign-in check."""
    return [c for c in server.calls if c != "IntrospectToken"]
