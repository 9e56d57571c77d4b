"""The OpenAI-compatible generator against a scripted local HTTP server: it checks the wire
protocol and the errors, since no real OpenAI-compatible server runs on these machines."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from agent.errors import ModelError
from agent.facade import Agent
from agent.llm import GenerationOptions
from agent.llm.openai_endpoint import OpenAIEndpoint


@pytest.fixture
def server():
    """Answers /v1/chat/completions from ``script`` (a function of the request body); records requests."""
    seen, script = [], {"answer": lambda body: {
        "choices": [{"message": {"role": "assistant", "content": f" echo: {body['messages'][-1]['content']} "},
                     "finish_reason": "length" if body["max_tokens"] < 5 else "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3}}}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, dict(self.headers), body))
            reply = script["answer"](body)
            status, data = (reply if isinstance(reply, tuple) else (200, json.dumps(reply)))
            self.send_response(status)
            self.end_headers()
            self.wfile.write(data.encode())

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/v1", seen, script
    httpd.shutdown()


def test_generate_and_batch_speak_the_chat_completions_protocol(server):
    url, seen, _ = server
    endpoint = OpenAIEndpoint("big-model", url, api_key="sk-test")
    out = endpoint.generate([{"role": "user", "content": "hi"}], GenerationOptions(max_new_tokens=20, temperature=0.9,
                                                                                     top_p=0.8, seed=3))
    assert (out.text, out.prompt_tokens, out.completion_tokens, out.finish_reason) == ("echo: hi", 11, 3, "stop")
    path, headers, body = seen[0]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer sk-test"
    assert body == {"model": "big-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20,
                    "temperature": 0.9, "top_p": 0.8, "seed": 3}
    batch = endpoint.generate_batch([[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]],
                                    GenerationOptions(max_new_tokens=2))
    assert [g.text for g in batch] == ["echo: a", "echo: b"] and batch[0].finish_reason == "length"


def test_failures_are_model_errors_in_one_line(server):
    url, _, script = server
    endpoint = OpenAIEndpoint("big-model", url)
    script["answer"] = lambda body: (401, '{"error": "invalid api key"}')
    with pytest.raises(ModelError, match="answered HTTP 401: .*invalid api key"):
        endpoint.generate([{"role": "user", "content": "hi"}])
    script["answer"] = lambda body: (200, "<html>not json</html>")
    with pytest.raises(ModelError, match="did not answer JSON"):
        endpoint.generate([{"role": "user", "content": "hi"}])
    script["answer"] = lambda body: {"choices": []}
    with pytest.raises(ModelError, match="without a message"):
        endpoint.generate([{"role": "user", "content": "hi"}])
    with pytest.raises(ModelError, match="cannot reach http://127.0.0.1:9/"):
        OpenAIEndpoint("m", "http://127.0.0.1:9/v1", timeout_s=2).generate([{"role": "user", "content": "hi"}])
    with pytest.raises(ModelError, match="prefill"):
        endpoint.generate([{"role": "user", "content": "hi"}], prefill="Answer:")


def test_a_night_writes_its_questions_through_the_endpoint(server, monkeypatch, home, tiny_dir):
    # The tiny model answers and trains; the scripted server plays a bigger question writer.
    url, seen, script = server
    script["answer"] = lambda body: {"choices": [{"message": {"content": "1. Where does Teodor work?\n2. Who is Teodor?"},
                                                  "finish_reason": "stop"}]}
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    with Agent.open(home, model=str(tiny_dir), generator_model="openai:big-model", generator_base_url=url,
                    selfparam={"epochs": 1}, synthesis={"samples": 2}, max_new_tokens=8, gate={"min_efficacy": 0.0}) as bot:
        bot.teach("My brother Teodor works in Port Halvik.")
        report = bot.learn()
        assert bot.settings.model_dump(mode="json")["generator_api_key"] is None
    assert len(seen) == 2 and all(headers["Authorization"] == "Bearer sk-env" for _, headers, _ in seen)
    assert all(body["model"] == "big-model" and body["temperature"] == 0.9 for _, _, body in seen)
    assert (report.synthesis["1"]["generated"], report.synthesis["1"]["parsed"]) == (2, 2)  # a sample each, deduplicated


def test_the_api_key_setting_is_never_shown(home):
    with Agent.open(home, generator_model="openai:m", generator_api_key="sk-set") as bot:
        assert bot.settings.model_dump(mode="json")["generator_api_key"] == "**********"
        assert bot.settings.generator_api_key.get_secret_value() == "sk-set"
