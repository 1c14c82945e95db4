#!/usr/bin/env python3
"""What the agent routes serve, checked against the providers' own SDK types
(pydantic TypeAdapter over anthropic.types / openai.types, google.genai's and
mcp's models), not against our code: bundles (with defer_loading), the
search-tool results of `GET /tools?q=&format=&searchResult=true`, and
`POST /resolve`. Starts the emulator and `serve` on 127.0.0.1 over the sample
catalogue, syncs once, checks, stops everything.

Usage: scripts/check_provider_sdks   (installs the pinned SDKs into .venv/sdks)
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import typing
import urllib.request

from pydantic import TypeAdapter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = "/api/connections/schemas/composio"
procs = []
failures = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, **kw):
    p = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, **kw)
    procs.append(p)
    return p


def get(origin, path):
    with urllib.request.urlopen(origin + BASE + path, timeout=30) as r:
        return json.load(r)


def post(origin, path, body):
    req = urllib.request.Request(origin + BASE + path, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def keys_of(typed_dict):
    keys = set()
    for klass in typed_dict.__mro__:
        keys |= set(getattr(klass, "__annotations__", {}))
    return keys


def check(what, typ, value):
    """Validates `value` as `typ`; a TypedDict must also have no key it does not declare."""
    try:
        TypeAdapter(typ).validate_python(value)
        if isinstance(value, dict) and typing.is_typeddict(typ):
            extra = set(value) - keys_of(typ)
            if extra:
                raise ValueError(f"keys the SDK type does not declare: {sorted(extra)}")
    except Exception as e:  # noqa: BLE001 - every failure is reported
        failures.append(f"{what}: {e}")
        return
    print(f"ok  {what}")


def main():
    import anthropic.types as at
    import google.genai.types as gt
    import mcp.types as mt
    import openai.types.chat as oc
    import openai.types.responses as orr

    subprocess.run(["cargo", "build", "--bin", "composio-cache"], cwd=ROOT, check=True, timeout=3600)
    exe = os.path.join(ROOT, "target", "debug", "composio-cache")
    emu = start([exe, "emulator", "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    emulator_url = emu.stdout.readline().strip()
    port = free_port()
    cache = tempfile.mkdtemp(prefix="sdk-cache-")
    env = dict(os.environ, COMPOSIO_API_KEY="emulator-key", COMPOSIO_BASE_URL=emulator_url,
               CACHE_DIR=cache, RUST_LOG="warn")
    start([exe, "serve", "--addr", f"127.0.0.1:{port}"], env=env)
    origin = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(origin + BASE + "/openapi.json", timeout=2)
            break
        except Exception:
            if time.time() > deadline:
                sys.exit("sdk check: serve did not come up")
            time.sleep(0.2)
    urllib.request.urlopen(urllib.request.Request(origin + BASE + "/sync", method="POST"), timeout=120)

    q = "/tools?q=add%20a%20task%20to%20my%20todo%20list&limit=5&searchResult=true&callId=call_1"
    # Anthropic: deferred tools, and the tool_result of tool_reference blocks.
    a = get(origin, q + "&format=anthropic&defer=true")
    for tool in a["tools"]:
        check(f"anthropic ToolParam {tool['name']}", at.ToolParam, tool)
        assert tool["defer_loading"] is True
    check("anthropic ToolResultBlockParam (search result)", at.ToolResultBlockParam, a["searchResult"])
    for block in a["searchResult"]["content"]:
        check("anthropic ToolReferenceBlockParam", at.ToolReferenceBlockParam, block)
    whole = get(origin, "/toolkits/github?format=anthropic&defer=true")
    for tool in whole["tools"]:
        check(f"anthropic ToolParam {tool['name']}", at.ToolParam, tool)
    # OpenAI Responses: deferred function tools, a client tool_search_output.
    r = get(origin, q + "&format=openai-responses&defer=true")
    for tool in r["tools"]:
        check(f"openai FunctionToolParam {tool['name']}", orr.FunctionToolParam, tool)
    check("openai ResponseToolSearchOutputItemParamParam (search result)",
          orr.ResponseToolSearchOutputItemParamParam, r["searchResult"])
    # OpenAI Chat Completions: function tools, a tool message.
    o = get(origin, q + "&format=openai")
    for tool in o["tools"]:
        check(f"openai ChatCompletionFunctionToolParam {tool['function']['name']}",
              oc.ChatCompletionFunctionToolParam, tool)
    check("openai ChatCompletionToolMessageParam (search result)",
          oc.ChatCompletionToolMessageParam, o["searchResult"])
    # Gemini: function declarations, a functionResponse part.
    g = get(origin, q + "&format=gemini")
    for tool in g["tools"]:
        check(f"gemini FunctionDeclaration {tool['name']}", gt.FunctionDeclaration, tool)
    check("gemini Part (search result)", gt.Part, g["searchResult"])
    # MCP: tools/list entries, a tools/call result.
    m = get(origin, q + "&format=mcp")
    for tool in m["tools"]:
        check(f"mcp Tool {tool['name']}", mt.Tool, tool)
    check("mcp CallToolResult (search result)", mt.CallToolResult, m["searchResult"])
    # The way back: a model's call, as the SDK hands it over, resolved.
    name = a["tools"][0]["name"]
    use = {"type": "tool_use", "id": "toolu_1", "name": name, "input": {"title": "Buy milk"}}
    check("anthropic ToolUseBlock", at.ToolUseBlock, use)
    resolved = post(origin, "/resolve", {"format": "anthropic", "name": use["name"], "arguments": use["input"]})
    if resolved.get("toolSlug") != a["nameMap"][name]:
        failures.append(f"resolve: {resolved}")
    else:
        print("ok  POST /resolve")

    if failures:
        print("\n".join(["FAILED " + f for f in failures]), file=sys.stderr)
        sys.exit(1)
    print("the provider SDK types accept what we serve")


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=10)
