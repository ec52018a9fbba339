"""``qa-service migrate`` and ``qa-service copy``, and the CLI's answers to bad store URLs."""

from __future__ import annotations

import pytest

from qa_service.cli import main
from qa_service.models import Document
from qa_service.retrieval.filters import Condition
from qa_service.service import QAService
from qa_service.settings import Settings
from tests.conftest import pg_database
from tests.fakes import FakeEncoder
from tests.pg import PgServer
from tests.unit.test_store_backends import ALL, MORE

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nothing"


def test_copy_moves_an_embedded_collection_without_embedding_again(
        settings: Settings, pg_server: PgServer | str, capsys: pytest.CaptureFixture[str]) -> None:
    url = pg_database(pg_server)
    embedded = QAService(settings, FakeEncoder())
    embedded.ingest(ALL + MORE)
    assert main(["copy", "--from", str(settings.index_dir), "--to", url]) == 0
    assert f"{len(ALL + MORE)} documents copied" in capsys.readouterr().out
    encoder = FakeEncoder()
    pg = QAService(settings.replace(store_url=url), encoder)
    try:
        assert pg.store.counts() == embedded.store.counts()
        assert pg.store.get_document("seed") == embedded.store.get_document("seed")
        assert pg.store.get_meta("model_id") == encoder.model_id
        for question in ("كم عدد الجنود في العراق؟", "Panthers defense points"):
            mine = pg.search(question, 5)[0]
            assert [p.chunk_id for p in mine] == [p.chunk_id for p in embedded.search(question, 5)[0]]
        rowids = [r for r, _ in pg.retriever._backend.dense(encoder.encode_queries(["x"]), 50, Condition())]
        query = encoder.encode_queries(["x"])[0]
        assert set(pg.store.best_sentence_cosines(rowids, query)) == set(rowids)  # sentence vectors came
        assert encoder.passages_encoded == 0
        # Run again after a change: only the changed document travels.
        embedded.ingest([Document(id="seed", text="نص جديد عن 9000 جندي.", lang="ar")])
        assert main(["copy", "--from", str(settings.index_dir), "--to", url]) == 0
        out = capsys.readouterr().out
        assert f"1 documents copied (1 chunks), {len(ALL + MORE) - 1} already there" in out
        assert pg.store.get_document("seed") == embedded.store.get_document("seed")
    finally:
        pg.close()
        embedded.close()


def test_copy_refuses_a_database_of_another_model(settings: Settings, pg_server: PgServer | str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    url = pg_database(pg_server)
    other = QAService(settings.replace(store_url=url), FakeEncoder(dim=64, model_id="other-model"))
    other.ingest([ALL[0]])
    other.close()
    embedded = QAService(settings, FakeEncoder())
    embedded.ingest(ALL)
    embedded.close()
    assert main(["copy", "--from", str(settings.index_dir), "--to", url]) == 1
    assert "model 'other-model'" in capsys.readouterr().err


def test_migrate_reports_schema_versions(settings: Settings, pg_server: PgServer | str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    url = pg_database(pg_server)
    assert main(["migrate", "--store-url", url]) == 0
    assert "migrated from schema 0 to 1" in capsys.readouterr().out
    assert main(["migrate", "--store-url", url]) == 0
    assert "already at schema 1" in capsys.readouterr().out
    QAService(settings, FakeEncoder()).close()
    assert main(["migrate", "--index-dir", str(settings.index_dir)]) == 0
    assert "already at schema" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["copy", "--from", "{index}", "--to", "http://example.org/db"], "not a PostgreSQL URL"),
    (["copy", "--from", "{index}", "--to", UNREACHABLE], "unreachable"),
    (["copy", "--from", "{index}", "--to", "postgresql://127.0.0.1:notaport/db"], "invalid"),
    (["copy", "--from", "/nonexistent", "--to", UNREACHABLE], "holds no collection"),
    (["migrate", "--store-url", UNREACHABLE], "unreachable"),
    (["migrate", "--store-url", "sqlite:///x.db"], "PostgreSQL URL"),
    (["migrate", "--index-dir", "/nonexistent"], "no collection"),
    (["search", "rain", "--store-url", UNREACHABLE], "unreachable"),
])
def test_bad_store_input_is_a_clear_cli_error(settings: Settings, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                               message: str) -> None:
    monkeypatch.setattr("qa_service.cli.open_service", lambda s: QAService(s, FakeEncoder()))
    QAService(settings, FakeEncoder()).close()
    code = main([a.replace("{index}", str(settings.index_dir)) for a in argv])
    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err


def test_a_changed_analyzer_reanalyses_the_postgres_index_on_open(
        settings: Settings, pg_server: PgServer | str, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    from qa_service.store import lexical

    url = pg_database(pg_server)
    pg = QAService(settings.replace(store_url=url), FakeEncoder())
    pg.ingest(ALL + MORE)
    pg.close()
    with psycopg.connect(url) as conn:
        before = conn.execute("SELECT count(*), (SELECT tokens FROM stats) FROM postings").fetchone()
        conn.execute("UPDATE chunks SET terms = 'stale', stems = 'stale'")
    monkeypatch.setattr(lexical, "ANALYZER_VERSION", "test-next")
    pg = QAService(settings.replace(store_url=url), FakeEncoder())
    try:
        with psycopg.connect(url) as conn:
            after = conn.execute("SELECT count(*), (SELECT tokens FROM stats) FROM postings").fetchone()
            assert after == before
            assert conn.execute("SELECT count(*) FROM chunks WHERE terms = 'stale'").fetchone() == (0,)
        assert pg.store.get_meta(lexical.ANALYZER_META_KEY) == "test-next"
        assert pg.search("وزارة الدفاع 5200 جندي", 1)[0][0].document_id == "older"
    finally:
        pg.close()


def test_bench_retrieval_store_url_measures_a_copy_of_the_pool(settings: Settings,
                                                                pg_server: PgServer | str) -> None:
    from qa_service.bench.retrieval import METHODS, Question, evaluate, measure_postgres, parity_table

    url = pg_database(pg_server)
    encoder = FakeEncoder()
    embedded = QAService(settings, encoder)
    embedded.ingest(ALL + MORE)
    questions = [Question("q1", "How many points did the Panthers defense give up?", "football", "en"),
                 Question("q2", "وزارة الدفاع 5200 جندي", "older", "ar"),
                 Question("q3", "الحكومة تؤكد شريك في سوريا", "m0", "ar")]
    vectors = encoder.encode_queries([q.text for q in questions])
    mine = evaluate(embedded.retriever, questions, vectors, METHODS)
    embedded.close()
    theirs = measure_postgres(settings, url, encoder, questions, vectors, METHODS)
    assert theirs["_copy"].startswith(f"{len(ALL + MORE)} documents copied")
    for method, per_set in mine.items():
        for qset, metrics in per_set.items():
            if not qset.startswith("_"):
                assert theirs["results"][method][qset] == metrics
    table = parity_table(mine, theirs["results"])
    assert table.count("| +0.000 | +0.000 |") == len(METHODS) * 2  # two question sets


def test_store_settings_are_validated_and_config_hides_passwords(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from qa_service.errors import BadInputError

    with pytest.raises(BadInputError, match="needs QA_STORE_URL"):
        Settings.from_mapping({"store_read_urls": "postgresql://r1/news"})
    with pytest.raises(BadInputError, match="PostgreSQL URLs"):
        Settings.from_mapping({"store_url": "mysql://db/news"})
    with pytest.raises(BadInputError, match="QA_HNSW_EF_SEARCH"):
        Settings.from_mapping({"hnsw_ef_search": "0"})
    monkeypatch.setenv("QA_STORE_URL", "postgresql://qa:s3cret@db1/news")
    monkeypatch.setenv("QA_STORE_READ_URLS", "postgresql://qa:s3cret@db2/news")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out and "postgresql://qa:***@db1/news" in out and "qa:***@db2" in out


def test_a_role_that_cannot_create_the_extension_gets_a_clear_error(
        pg_server: PgServer | str, capsys: pytest.CaptureFixture[str]) -> None:
    import psycopg

    url = pg_database(pg_server)
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'bare'").fetchone():
            conn.execute("CREATE DATABASE bare TEMPLATE template0")  # no pgvector in it
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'weak'").fetchone():
            conn.execute("CREATE ROLE weak LOGIN")
    weak = url.rsplit("/", 1)[0].replace("postgres@", "weak@") + "/bare"
    assert main(["migrate", "--store-url", weak]) == 1
    err = capsys.readouterr().err
    assert "cannot create the schema" in err and "CREATE EXTENSION vector" in err and "Traceback" not in err
