"""Materials Project source: the real ``mp_api`` client against a loopback server that answers
like the API from recorded-schema documents (tests/fixtures/mp/)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from ingest.errors import MaterialsProjectError, MissingApiKeyError
from ingest.materials_project import MISSING_KEY_MESSAGE, MPQuery, query, resolve_api_key
from ingest.writer import IngestReport, ingest

FIXTURE = json.loads((Path(__file__).parent / "fixtures/mp/summary_docs.json").read_text())
API_KEY = "k" * 32


def _matches(doc: dict, params: dict[str, str]) -> bool:
    symmetry = doc["symmetry"]
    checks = {
        "spacegroup_number": lambda v: symmetry["number"] == int(v),
        "crystal_system": lambda v: symmetry["crystal_system"].lower() == v.lower(),
        "volume_min": lambda v: doc["volume"] >= float(v),
        "volume_max": lambda v: doc["volume"] <= float(v),
        "nsites_min": lambda v: doc["nsites"] >= int(v),
        "nsites_max": lambda v: doc["nsites"] <= int(v),
        "elements": lambda v: set(v.split(",")) <= set(doc["elements"]),
    }
    return all(check(params[key]) for key, check in checks.items() if key in params)


class FakeMaterialsProject:
    """A loopback HTTP server with the API's heartbeat and summary search behaviour."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.fail_next: list[int] = []  # HTTP statuses to answer with before serving data
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if url.path.rstrip("/") == "/heartbeat":
                    self._send(200, FIXTURE["heartbeat"])
                    return
                outer.requests.append(params)
                if self.headers.get("x-api-key") != API_KEY:
                    self._send(401, {"detail": "Invalid or missing API key"})
                    return
                if outer.fail_next:
                    self._send(outer.fail_next.pop(0), {"detail": "injected failure"})
                    return
                if url.path.rstrip("/") != "/materials/summary":
                    self._send(404, {"detail": "not found"})
                    return
                docs = [d for d in FIXTURE["docs"] if _matches(d, params)]
                skip, limit = int(params.get("_skip", 0)), int(params.get("_limit", 1000))
                page = docs[skip : skip + limit]
                if "_fields" in params:
                    keep = params["_fields"].split(",")
                    page = [{k: d[k] for k in keep if k in d} for d in page]
                self._send(200, {"data": page, "meta": {"total_doc": len(docs)}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> FakeMaterialsProject:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mp_server(monkeypatch):
    monkeypatch.setenv("MP_API_KEY", API_KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with FakeMaterialsProject() as server:
        yield server


def test_paper_preset_pages_filters_and_labels(mp_server):
    records = list(
        query(MPQuery.paper_preset(), endpoint=mp_server.endpoint, chunk_size=1, backoff_s=0)
    )
    ids = {r.material_id for r in records}
    # every fixture doc in the six groups except the oversized Pm-3n cell (343 A^3 > 250)
    expected = {
        d["material_id"]
        for d in FIXTURE["docs"]
        if d["symmetry"]["number"] in (221, 223, 225, 227, 229, 230) and d["volume"] < 250
    }
    assert ids == expected and "mp-990006" not in ids
    assert any(int(r.get("_skip", 0)) > 0 for r in mp_server.requests), "client did not page"
    by_id = {r.material_id: r for r in records}
    assert by_id["mp-149"].labels.spacegroup_symbol == "Fd-3m"
    assert by_id["mp-149"].setting["origin_choice"] == 2
    assert len(by_id["mp-23"].structure) == 4  # MP's primitive fcc cell -> conventional cell
    assert by_id["mp-990002"].disordered.spacegroup_symbol == "Im-3m"
    provenance = by_id["mp-149"].provenance
    assert provenance["database_version"] == FIXTURE["heartbeat"]["db_version"]
    assert provenance["mp_api_version"] and provenance["query"]["max_volume_by_group"]["227"] == 500


def test_retries_rate_limits_and_server_errors(mp_server):
    mp_server.fail_next = [429, 503, 503, 503, 503]
    records = list(
        query(
            MPQuery(max_volume_by_group={229: 250.0}),
            endpoint=mp_server.endpoint,
            backoff_s=0.01,
        )
    )
    assert {r.material_id for r in records} == {"mp-13", "mp-91"}
    assert mp_server.fail_next == []


def test_gives_up_after_retries_with_clear_error(mp_server):
    mp_server.fail_next = [503] * 40
    with pytest.raises(MaterialsProjectError, match="failed after 2 attempt"):
        list(
            query(
                MPQuery(max_volume_by_group={229: None}),
                endpoint=mp_server.endpoint,
                retries=1,
                backoff_s=0.0,
            )
        )


def test_rejected_key_is_reported(mp_server, monkeypatch):
    monkeypatch.setenv("MP_API_KEY", "x" * 32)
    with pytest.raises(MaterialsProjectError, match="refused the API key"):
        list(query(MPQuery(max_volume_by_group={229: None}), endpoint=mp_server.endpoint))


def test_missing_key_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(MissingApiKeyError) as info:
        resolve_api_key("")
    assert str(info.value) == MISSING_KEY_MESSAGE


def test_resumable_skips_ingested_ids(mp_server, tmp_path):
    from lake import Lake

    lake = Lake.open(str(tmp_path / "lake"), create=True)
    first = ingest(
        lake,
        query(MPQuery(max_volume_by_group={225: 250.0}), endpoint=mp_server.endpoint),
        progress=False,
    )
    assert sorted(first.ingested) == ["mp-134", "mp-23", "mp-990003"]
    report = IngestReport()
    again = ingest(
        lake,
        query(
            MPQuery(max_volume_by_group={225: 250.0}),
            endpoint=mp_server.endpoint,
            skip_ids=lake.structure_ids(),
            on_skip=report.skipped.append,
        ),
        report=report,
        progress=False,
    )
    assert again.ingested == [] and sorted(again.skipped) == sorted(first.ingested)
    stored = lake.structure("mp-990003")
    assert stored["source"] == "mp" and stored["disordered_spacegroup_symbol"] == "Pm-3m"


def test_max_volume_without_spacegroups_filters(mp_server, tmp_path, capsys):
    """``--max-volume`` with ``--crystal-system`` alone (README story 1) limits the volume."""
    from infra.app.cli import main
    from lake import Lake

    lake = str(tmp_path / "lake")
    argv = ["--lake", lake, "ingest", "mp", "--crystal-system", "cubic", "--max-volume", "12",
            "--endpoint", mp_server.endpoint]  # fmt: skip
    assert main(argv) == 0
    searches = [r for r in mp_server.requests if "_fields" in r]
    assert searches and all(float(r["volume_max"]) == 12.0 for r in searches)
    # mp-13 (11.8 A^3) and mp-23 (10.9 A^3) are the cubic fixture cells below 12 A^3
    assert Lake.open(lake, mode="r").structure_ids() == ["mp-13", "mp-23"]
    assert "ingested 2" in capsys.readouterr().out
