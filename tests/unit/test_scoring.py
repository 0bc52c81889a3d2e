"""Scoring requests: the accepted body layouts, and one bad input failing only its own request
(batch isolation in the instance and the batcher, the endpoint log, bounded instance restarts)."""

from __future__ import annotations

import asyncio
import json

import pytest

from fmhub.errors import SpecError
from fmhub.serving.batcher import BatchFailed, DynamicBatcher, InputFailed
from fmhub.serving.instance import predict_isolated
from fmhub.services.scoring_request import parse_request
from fmhub.tasks import get_task

TC = get_task("text-classification")
QA = get_task("question-answering")
NER = get_task("token-classification")
SUM = get_task("summarization")


def run_async(coro):
    """Run a coroutine on its own event loop in a worker thread: a browser test earlier in the same
    session can leave this thread's loop marked as running, where ``asyncio.run`` refuses."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _parse(task, body):
    return parse_request(task, json.dumps(body).encode() if not isinstance(body, bytes) else body)


# -- layouts ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("task, body, inputs, params", [
    (TC, {"input_data": ["a", ["b", "c"]]}, ["a", ["b", "c"]], {}),
    (TC, {"inputs": "one text"}, ["one text"], {}),
    (NER, {"inputs": "Ada was born"}, ["Ada was born"], {}),
    (TC, {"inputs": "one text", "parameters": {"top_k": 2}}, ["one text"], {"top_k": 2}),
    (TC, {"inputs": {"text": "a", "text_pair": "b"}}, [["a", "b"]], {}),
    (QA, {"inputs": {"question": "Where?", "context": "In London."}}, [{"question": "Where?", "context": "In London."}],
     {}),
    (TC, {"input_data": {"columns": ["text"], "index": [0, 1], "data": [["a"], ["b"]]}}, ["a", "b"], {}),
    (TC, {"input_data": {"columns": ["hypothesis", "premise"], "index": [7], "data": [["h", "p"]]}},
     [["p", "h"]], {}),
    (TC, {"input_data": {"columns": ["x", "y"], "data": [["first", "second"]]}}, [["first", "second"]], {}),
    (TC, {"input_data": {"columns": ["id", "sentence1", "sentence2"], "data": [[1, "s1", "s2"]]}},
     [["s1", "s2"]], {}),
    (QA, {"input_data": {"columns": ["context", "question"], "index": [0], "data": [["Ada lived in London.", "Where?"]]}},
     [{"question": "Where?", "context": "Ada lived in London."}], {}),
    (SUM, {"input_data": {"columns": ["id", "document"], "data": [[3, "a long text"]]}}, ["a long text"], {}),
    (NER, {"input_data": {"columns": ["tokens"], "data": [[["Ada", "Lovelace"]]]}}, [["Ada", "Lovelace"]], {}),
    (TC, {"input_data": {"input_string": ["a", "b"], "parameters": {"top_k": 3}}}, ["a", "b"], {"top_k": 3}),
    (TC, {"inputs": {"input_string": ["a"], "parameters": {"top_k": 2}}}, ["a"], {"top_k": 2}),
    (SUM, {"input_data": {"input_string": ["doc"], "parameters": {"num_beams": 2}}, "params": {"num_beams": 2}},
     ["doc"], {"num_beams": 2}),
])
def test_each_request_layout_gives_the_task_its_inputs_and_params(task, body, inputs, params):
    parsed = _parse(task, body)
    assert parsed.inputs == inputs
    assert parsed.params == params


@pytest.mark.parametrize("task, body, words", [
    (TC, {"input_data": "bare text"}, "input_data must be a list"),  # a bare string only under inputs
    (QA, {"inputs": "a question without context"}, "inputs[0]"),
    (TC, {"input_data": {"columns": ["text"], "data": [["a"], ["b", "c"]]}}, "input_data.data[1] must be a list of 1"),
    (TC, {"input_data": {"columns": ["text"], "index": [0], "data": [["a"], ["b"]]}}, "input_data.index"),
    (TC, {"input_data": {"columns": ["text"], "data": [[7]]}}, "input_data.data[0]: expected"),
    (TC, {"input_data": {"columns": ["a", "b", "c"], "data": [["x", "y", "z"]]}}, "takes one text column"),
    (QA, {"input_data": {"columns": ["a", "b", "c"], "data": [["x", "y", "z"]]}}, "no question and context"),
    (TC, {"input_data": {"columns": [], "data": []}}, "input_data.columns"),
    (TC, {"input_data": {"input_string": ["a"], "oops": 1}}, "input_data.oops"),
    (TC, {"input_data": {"something": 1}}, "neither input_string nor columns"),
    (TC, {"input_data": {"input_string": ["a"], "parameters": {"top_k": 0}}}, "params.top_k"),
    (TC, {"input_data": {"input_string": ["a"], "parameters": {"top_k": 2}}, "params": {"top_k": 3}},
     "input_data.parameters.top_k differs"),
    (TC, {"input_data": ["a"], "parameters": {"nope": 1}}, "params.nope is not a parameter"),
    (TC, {"input_data": ["a"], "extra": 1}, "unknown field(s) extra"),
])
def test_malformed_layouts_name_the_field(task, body, words):
    with pytest.raises(SpecError) as info:
        _parse(task, body)
    assert words in info.value.message


@pytest.mark.parametrize("body, where", [
    (b'{"input_data": ["fine", "also fine", "\\ud800"]}', "input_data[2]"),
    (b'{"inputs": "\\udfff alone"}', "inputs[0]"),
    (b'{"input_data": [["ok", "x\\ud834"]]}', "input_data[0]"),
    (b'{"input_data": {"columns": ["text"], "data": [["ok"], ["\\ud800"]]}}', "input_data.data[1]"),
])
def test_an_unpaired_surrogate_is_refused_before_batching_naming_its_index(body, where):
    with pytest.raises(SpecError) as info:
        parse_request(TC, body)
    assert info.value.message.startswith(f"{where}: ")
    assert "unpaired surrogate" in info.value.message and info.value.http_status == 422


def test_a_surrogate_pair_is_text():
    assert parse_request(TC, b'{"input_data": ["\\ud83d\\ude00 fine"]}').inputs == ["\U0001F600 fine"]


# -- isolation inside the instance ----------------------------------------------------------------

def _fake_run(calls):
    def run(part):
        calls.append(len(part))
        if any(x == "BAD" for x in part):
            raise TypeError("cannot encode")
        return [{"label": x} for x in part]
    return run


def test_a_failing_batch_is_split_until_the_bad_input_stands_alone():
    calls = []
    inputs = [f"t{i}" for i in range(16)]
    inputs[5] = "BAD"
    outputs, errors = predict_isolated(_fake_run(calls), inputs)
    assert errors == {5: ("TypeError: cannot encode", True)}
    assert [o["label"] for i, o in enumerate(outputs) if i != 5] == [x for i, x in enumerate(inputs) if i != 5]
    assert outputs[5] is None
    assert len(calls) <= 2 * 4 + 1  # bisection, not one call per input


def test_isolation_stops_at_its_budget_and_says_so():
    calls = []
    outputs, errors = predict_isolated(_fake_run(calls), ["BAD"] * 10, budget=5)
    assert len(calls) == 5 and set(errors) == set(range(10))
    assert any(not isolated for _, isolated in errors.values())


def test_a_request_that_spends_its_budget_never_fails_another_requests_inputs():
    calls = []
    inputs = ["BAD"] * 10 + ["ok1", "ok2"] + ["BAD"]
    outputs, errors = predict_isolated(_fake_run(calls), inputs, budget=3, sizes=[10, 2, 1])
    assert [o["label"] for o in outputs[10:12]] == ["ok1", "ok2"]
    assert set(errors) == set(range(10)) | {12}
    assert not any(errors[i][1] for i in range(10)) and errors[12] == ("TypeError: cannot encode", True)


class _Panic(BaseException):
    """Stands for ``pyo3_runtime.PanicException``: a Rust tokenizer's panic derives from BaseException."""


def test_a_panic_fails_its_input_and_ctrl_c_still_ends_the_process():
    def run(part):
        if "PANIC" in part:
            raise _Panic("tokenizer panicked")
        if "STOP" in part:
            raise KeyboardInterrupt
        return part

    outputs, errors = predict_isolated(run, ["a", "PANIC", "b"])
    assert outputs == ["a", None, "b"] and errors == {1: ("_Panic: tokenizer panicked", True)}
    with pytest.raises(KeyboardInterrupt):
        predict_isolated(run, ["a", "STOP"])


# -- isolation in the batcher -----------------------------------------------------------------------

class FakeInstance:
    """An instance that predicts in-process with :func:`predict_isolated` (no process, no model)."""

    name, state, error = "ep/blue/0", "ready", None

    def __init__(self):
        self.batches = []

    async def wait_ready(self, timeout_s):
        return True

    async def run(self, inputs, params, sizes=None):
        self.batches.append(list(inputs))
        return predict_isolated(_fake_run([]), inputs, sizes=sizes)


def _batch(requests, max_batch_size=64):
    """Submit every request at once to one batcher; returns each one's outcome and the batches run."""
    async def go():
        instance = FakeInstance()
        batcher = DynamicBatcher([instance], max_batch_size, max_batch_wait_ms=50, max_queue=16)
        futures = [batcher.submit(r, {}) for r in requests]
        done = await asyncio.gather(*futures, return_exceptions=True)
        batcher.close()
        return done, instance.batches
    return run_async(go())


def test_one_bad_input_fails_only_its_own_request_of_the_batch():
    done, batches = _batch([["a", "b"], ["c", "BAD", "d"], ["e"]])
    assert len(batches) == 1 and len(batches[0]) == 6  # they shared one batch
    assert [o["label"] for o in done[0]] == ["a", "b"] and [o["label"] for o in done[2]] == ["e"]
    assert isinstance(done[1], InputFailed) and done[1].index == 1 and "cannot encode" in done[1].cause


def test_a_request_of_many_bad_inputs_fails_alone_and_its_neighbour_is_answered():
    done, batches = _batch([["BAD"] * 40, ["x"]])
    assert len(batches) == 1  # they shared one batch; bisecting 40 bad inputs spends the request's budget
    assert isinstance(done[0], BatchFailed) and "40 of 40 inputs failed" in str(done[0])
    assert [o["label"] for o in done[1]] == ["x"]


def test_a_batch_in_which_every_input_fails_is_the_deployments_fault():
    done, _ = _batch([["BAD"], ["BAD"]])
    assert all(isinstance(d, BatchFailed) for d in done)


# -- the runtime: 422 naming the index, the neighbours answered, every error in the endpoint log ---

@pytest.fixture()
def runtime(ctx):
    from fmhub.entities import Deployment
    from fmhub.services import endpoints as endpoints_service
    from fmhub.serving.local import LocalDeployment, LocalServingBackend
    from fmhub.services.serving import EndpointRuntime, LiveDeployment

    endpoints_service.create_endpoint(ctx, "ep")
    key = endpoints_service.get_keys(ctx, "ep")["primary_key"]
    record = Deployment(endpoint="ep", name="blue", model="m:1", task="text-classification", traffic=100,
                        max_batch_wait_ms=100)
    from fmhub.store import endpoints_repo

    endpoints_repo.upsert_deployment(ctx.db_url, record)  # routing reads the recorded deployments

    def make():
        backend = LocalServingBackend()
        rt = EndpointRuntime(ctx, backends={"local": backend})
        instance = FakeInstance()
        batcher = DynamicBatcher([instance], 32, 100, 16)
        batcher._gap_s = 0.001  # as under load: a batch waits for the requests right behind it
        backend.live[("ep", "blue")] = LocalDeployment(record, [instance], batcher)
        rt.live[("ep", "blue")] = LiveDeployment(record, backend)
        return rt
    return make, f"Bearer {key}"


def test_runtime_answers_422_for_the_bad_request_and_200_for_its_neighbours(runtime):
    make, auth = runtime

    async def go():
        rt = make()
        bodies = [{"input_data": ["good"]}, {"input_data": ["fine", "BAD"]}, {"inputs": "ok"}]
        done = await asyncio.gather(*(rt.score("ep", json.dumps(b).encode(), auth) for b in bodies),
                                    return_exceptions=True)
        return rt, done

    rt, done = run_async(go())
    assert len(rt.backend("local").live[("ep", "blue")].instances[0].batches) == 1  # one shared batch
    assert done[0]["predictions"] == [{"label": "good"}] and done[2]["predictions"] == [{"label": "ok"}]
    assert isinstance(done[1], SpecError) and done[1].http_status == 422
    assert done[1].message.startswith("input_data[1]: ") and "TypeError: cannot encode" in done[1].message
    log = list(rt.log_lines("ep"))
    assert any("422" in line and "input_data[1]" in line and "cannot encode" in line for line in log)


def test_runtime_logs_every_error_answer_of_a_known_endpoint(runtime):
    from fmhub.errors import NotFoundError, UnauthorizedError

    make, auth = runtime

    async def go():
        rt = make()
        outcomes = []
        for endpoint, body, key in (("ep", b'{"input_data": ["\\ud800"]}', auth), ("ep", b"[", auth),
                                    ("ep", b'{"input_data": ["a"]}', "Bearer wrong"),
                                    ("nope", b'{"input_data": ["a"]}', auth)):
            try:
                outcomes.append(await rt.score(endpoint, body, key))
            except Exception as exc:  # noqa: BLE001
                outcomes.append(exc)
        return rt, outcomes

    rt, outcomes = run_async(go())
    assert [type(o) for o in outcomes] == [SpecError, SpecError, UnauthorizedError, NotFoundError]
    log = "\n".join(rt.log_lines("ep"))
    assert "422 invalid_spec: input_data[0]: the text holds an unpaired surrogate \\ud800" in log
    assert "not valid JSON" in log and "401 unauthorized" in log
    assert rt.log_lines("nope") == []  # an unknown endpoint gets no log


# -- a real tiny model in the instance loop ---------------------------------------------------------

class FakeConn:
    def __init__(self, messages):
        self.inbox, self.sent = list(messages), []

    def recv(self):
        if not self.inbox:
            raise EOFError
        return self.inbox.pop(0)

    def send(self, message):
        self.sent.append(message)


def test_the_instance_isolates_an_input_its_tokenizer_cannot_encode(tiny_bert):
    from fmhub.serving.instance import serve_instance

    conn = FakeConn([{"id": 1, "inputs": ["the movie", "bad \ud800 text", ["the plot", "was fun"]], "params": {}},
                     None])
    serve_instance(conn, {"model_path": str(tiny_bert), "task": "text-classification", "device": "cpu",
                          "threads": 1})
    assert conn.sent[0]["type"] == "ready"
    result = conn.sent[1]
    assert result["id"] == 1 and set(result["errors"]) == {1}
    message, isolated = result["errors"][1]
    assert isolated and message
    assert result["outputs"][1] is None
    assert all("label" in result["outputs"][i] for i in (0, 2))


# -- an instance that keeps dying is given up --------------------------------------------------------

def test_an_instance_that_keeps_dying_is_marked_failed_after_bounded_restarts(monkeypatch):
    from fmhub.serving import pool

    class DeadProcess:
        exitcode, pid = -9, 4242

        def join(self, timeout=None):
            pass

    starts, sleeps, notes = [], [], []

    def fake_start(self):
        starts.append(1)
        self.process, self.pid, self.started_s = DeadProcess(), 4242, pool.time.monotonic()

    monkeypatch.setattr(pool.Instance, "_start", fake_start)
    monkeypatch.setattr(pool.time, "sleep", sleeps.append)

    async def go():
        instance = pool.Instance("ep/blue/0", {}, asyncio.get_running_loop(), notify=notes.append)
        for _ in range(pool.MAX_QUICK_RESTARTS + 1):
            instance._on_exit()
        await asyncio.sleep(0)
        return instance, await instance.wait_ready(1.0)

    instance, ready = run_async(go())
    assert instance.state == "failed" and not ready
    assert len(starts) == 1 + pool.MAX_QUICK_RESTARTS and instance.restarts == pool.MAX_QUICK_RESTARTS
    assert sleeps == sorted(sleeps) and sleeps[0] < sleeps[-1] <= pool.BACKOFF_MAX_S  # backoff grows
    assert "not restarted again" in instance.error and "exit code -9" in instance.error
    assert "failed" in notes[-1] and "restarting" in notes[0]


def test_requests_that_find_the_routes_stale_share_one_database_read(runtime, monkeypatch):
    from fmhub.services import endpoints as endpoints_service

    make, auth = runtime
    reads = []
    real = endpoints_service.get_endpoint

    def counting(ctx, name):
        reads.append(name)
        return real(ctx, name)

    monkeypatch.setattr(endpoints_service, "get_endpoint", counting)

    async def go():
        rt = make()
        done = await asyncio.gather(*(rt.score("ep", b'{"inputs": "ok"}', auth) for _ in range(10)))
        rt.forget_routes("ep")  # a deploy or traffic change: the next request reads again
        await rt.score("ep", b'{"inputs": "ok"}', auth)
        return done

    done = run_async(go())
    assert all(d["predictions"] == [{"label": "ok"}] for d in done)
    assert reads == ["ep", "ep"]
