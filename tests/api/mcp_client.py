"""The official MCP Python client against rogeriq, run by tests/api/mcp.rs.

It speaks to `rogeriq mcp` over stdio (the initialize handshake of the revisions before
2026-07-28, as older clients do) and to `/mcp` over streamable HTTP (the client's default:
discover, the current revision), and on each:
- lists the tools and checks their names, annotations and input schemas against the server's
  own OpenAPI document (path and query parameters and the request body's properties, side by
  side; `org_id` is the key's; a create adds `idempotency_key`);
- creates a project, a conversation and a message, lists them, searches the knowledge base,
  reads them as resources, and deletes the project;
- calls a write tool with a read-only key: a tool error naming the scope, and nothing written;
- calls with bad arguments: tool errors, and the session goes on.
Over HTTP it also checks that a request without a key gets 401 with `WWW-Authenticate`, and a
foreign `Origin` 403.

Input (environment): RIQ_BIN (the rogeriq binary), RIQ_BASE (the server's root), RIQ_ADMIN_KEY,
RIQ_READ_KEY (scope `read`), RIQ_EXPECTED (JSON: each tool's route and effect, from the
catalog). Exit status 0 when every check passes; the first failure is printed.
"""

import asyncio
import json
import os
import sys
import urllib.error
import urllib.request

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

BIN = os.environ["RIQ_BIN"]
BASE = os.environ["RIQ_BASE"]
ADMIN_KEY = os.environ["RIQ_ADMIN_KEY"]
READ_KEY = os.environ["RIQ_READ_KEY"]
EXPECTED = json.loads(os.environ["RIQ_EXPECTED"])

# The tools the issue names; the catalog has more.
NAMED = """projects_list projects_get projects_create projects_update projects_delete
conversations_list conversations_get conversations_create messages_list messages_send
conversations_close contacts_list contacts_get contacts_upsert kb_list kb_get kb_search
kb_create kb_update kb_publish agent_respond agent_classify agent_suggest webhooks_list
webhooks_deliveries audit_list""".split()


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def http_get(path, key):
    request = urllib.request.Request(BASE + path, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def raw_post(path, headers):
    """Status, headers and body of a POST with an MCP `ping`."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        **headers,
    }
    request = urllib.request.Request(BASE + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def expected_schema(document, route):
    """A tool's input schema as the OpenAPI operation of its route says it."""
    operation = document["paths"][route["path"]][route["method"].lower()]
    properties, required = {}, set()
    for parameter in operation.get("parameters", []):
        # Idempotency-Key is the `idempotency_key` of creates, checked on its own.
        if parameter["in"] == "header":
            continue
        if parameter["in"] == "path" and parameter["name"] == "org_id":
            continue
        properties[parameter["name"]] = parameter["schema"]
        if parameter.get("required"):
            required.add(parameter["name"])
    constraints = []
    body = operation.get("requestBody")
    if body:
        schema = body["content"]["application/json"]["schema"]
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = document["components"]["schemas"][name]
        if "allOf" in schema:
            own, constraints = schema["allOf"][0], schema["allOf"][1:]
        else:
            own = schema
        properties.update(own.get("properties", {}))
        if body.get("required"):
            required |= set(own.get("required", []))
    fixed = set(route["fixed"])
    for name in fixed:
        properties.pop(name)
        required.discard(name)
    if fixed:
        # "At least one field" of a PATCH is met by the fields the tool sets itself.
        constraints = [
            c for c in constraints
            if not any(alt.get("required") and set(alt["required"]) <= fixed
                       for alt in c.get("anyOf", []))
        ]
    return properties, required, constraints


def check_tools(tools, document):
    names = [t.name for t in tools]
    check(sorted(names) == sorted(EXPECTED), f"tools {sorted(set(names) ^ set(EXPECTED))} differ")
    for name in NAMED:
        check(name in names, f"no tool {name}")
    for tool in tools:
        route = EXPECTED[tool.name]
        schema = tool.input_schema
        check(schema["type"] == "object", f"{tool.name}: not an object schema")
        properties, required, constraints = expected_schema(document, route)
        got = dict(schema.get("properties", {}))
        key = got.pop("idempotency_key", None)
        check((key is not None) == (route["effect"] == "Create"),
              f"{tool.name}: idempotency_key only on creates")
        check(got == properties, f"{tool.name}: properties differ from the OpenAPI operation")
        check(set(schema.get("required", [])) == required,
              f"{tool.name}: required {schema.get('required')} != {sorted(required)}")
        check(schema.get("allOf", []) == constraints, f"{tool.name}: constraints differ")
        hints = tool.annotations
        check(hints.read_only_hint == (route["effect"] == "Read"), f"{tool.name}: readOnlyHint")
        if route["method"] == "DELETE":
            check(hints.destructive_hint is True, f"{tool.name}: a delete is destructive")
        check(tool.description, f"{tool.name}: no description")


def data(result, tool):
    check(not result.is_error, f"{tool} failed: {result.content}")
    check(result.structured_content is not None, f"{tool}: no structured content")
    check(result.content and result.content[0].text.startswith(tool), f"{tool}: no summary")
    return result.structured_content["data"]


def tool_error(result, code, what):
    check(result.is_error, f"{what}: expected a tool error, got {result.structured_content}")
    body = result.structured_content
    check(body["code"] == code, f"{what}: code {body.get('code')} != {code}")
    return body


async def scenario(client, label, read_client):
    document = http_get("/api/v1/openapi.json", ADMIN_KEY)
    tools = (await client.list_tools()).tools
    check_tools(tools, document)

    async def call(name, arguments):
        return await client.call_tool(name, arguments)

    project = data(await call("projects_create", {
        "name": f"MCP {label}",
        "idempotency_key": f"mcp-{label}-project",
    }), "projects_create")
    project_id = project["id"]
    listed = data(await call("projects_list", {}), "projects_list")
    check(project_id in [p["id"] for p in listed], "the new project is listed")

    conversation = data(await call("conversations_create", {
        "project_id": project_id,
        "subject": "Refund for order 42",
        "priority": "high",
    }), "conversations_create")
    message = data(await call("messages_send", {
        "project_id": project_id,
        "conversation_id": conversation["id"],
        "content": "We have refunded your order.",
        "sender_type": "agent",
    }), "messages_send")
    check(message["content"] == "We have refunded your order.", "the message as sent")
    conversations = await call("conversations_list", {
        "project_id": project_id, "status": "open", "limit": 10,
    })
    check([c["id"] for c in data(conversations, "conversations_list")] == [conversation["id"]],
          "the conversation is listed")
    check("has_more" in conversations.structured_content, "a page carries has_more")
    messages = data(await call("messages_list", {
        "project_id": project_id, "conversation_id": conversation["id"],
    }), "messages_list")
    check([m["id"] for m in messages] == [message["id"]], "the message is listed")
    closed = data(await call("conversations_close", {
        "project_id": project_id, "conversation_id": conversation["id"],
    }), "conversations_close")
    check(closed["status"] == "closed", "conversations_close closes")

    article = data(await call("kb_create", {
        "project_id": project_id,
        "title": "How refunds work",
        "content": "Refunds reach your card within five days.",
    }), "kb_create")
    data(await call("kb_publish", {
        "project_id": project_id, "kb_article_id": article["id"],
    }), "kb_publish")
    hits = data(await call("kb_search", {"project_id": project_id, "q": "refunds"}),
                "kb_search")
    check(hits and hits[0]["id"] == article["id"], f"kb_search finds the article: {hits}")

    # The same objects as resources.
    resources = (await client.list_resources()).resources
    check(f"rogeriq://projects/{project_id}" in [str(r.uri) for r in resources],
          "the project is a resource")
    templates = (await client.list_resource_templates()).resource_templates
    check(len(templates) == 3, "three resource templates")
    uri = f"rogeriq://projects/{project_id}/conversations/{conversation['id']}"
    contents = (await client.read_resource(uri)).contents
    check(json.loads(contents[0].text)["id"] == conversation["id"], "a conversation resource")

    # A read-only key: a tool error that names the scope, and nothing written.
    refused = tool_error(await read_client.call_tool("projects_create", {"name": "Nope"}),
                         "INSUFFICIENT_SCOPE", "a read-only key's create")
    check("projects:write" in refused["error"], f"the missing scope is named: {refused}")
    check(refused.get("request_id", "").startswith("req_"), "the request id is carried")
    names = [p["name"] for p in data(await call("projects_list", {}), "projects_list")]
    check("Nope" not in names, "nothing was written")
    data(await read_client.call_tool("projects_get", {"project_id": project_id}), "projects_get")

    # Bad arguments: tool errors, and the session goes on.
    tool_error(await call("conversations_get", {"project_id": project_id}),
               "INVALID_ARGUMENT", "a missing path argument")
    tool_error(await call("projects_get", {"project_id": 7}), "INVALID_ARGUMENT",
               "a number for an id")
    tool_error(await call("projects_list", {"bogus": 1}), "INVALID_ARGUMENT",
               "an unknown argument")
    invalid = tool_error(await call("conversations_create", {
        "project_id": project_id, "priority": "whenever",
    }), "BAD_REQUEST", "a value the API refuses")
    check(invalid.get("issues"), f"the API's issues are carried: {invalid}")
    tool_error(await call("conversations_get", {
        "project_id": project_id, "conversation_id": "conv_doesnotexist",
    }), "CONVERSATION_NOT_FOUND", "an unknown conversation")
    try:
        await call("no_such_tool", {})
        check(False, "an unknown tool is a protocol error")
    except AssertionError:
        raise
    except Exception:
        pass

    deleted = data(await call("projects_delete", {"project_id": project_id}), "projects_delete")
    check(deleted["deleted"] is True, "the project is deleted")
    tool_error(await call("projects_get", {"project_id": project_id}),
               "PROJECT_NOT_FOUND", "the deleted project")
    print(f"mcp client: {label}: {len(tools)} tools, every check passed")


def stdio_client(key):
    """`rogeriq mcp` with the key from the environment, as an MCP client config would run it."""
    return Client(
        StdioServerParameters(
            command=BIN,
            args=["mcp"],
            env={"RIQ_API_BASE": BASE, "RIQ_API_KEY": key, "HOME": os.environ["HOME"]},
        ),
        mode="legacy",
    )


def http_client(key):
    headers = {"Authorization": f"Bearer {key}"}
    transport = streamable_http_client(BASE + "/mcp", http_client=httpx2.AsyncClient(headers=headers))
    return Client(transport)


async def main():
    async with stdio_client(ADMIN_KEY) as client, stdio_client(READ_KEY) as reader:
        check(client.server_info.name == "rogeriq", "the server names itself")
        check(client.protocol_version == "2025-11-25",
              f"an initialize answered with {client.protocol_version}")
        await scenario(client, "stdio", reader)
    async with http_client(ADMIN_KEY) as client, http_client(READ_KEY) as reader:
        check(client.protocol_version == "2026-07-28",
              f"the current revision over HTTP, not {client.protocol_version}")
        await scenario(client, "http", reader)
    async with Client(streamable_http_client(
        BASE + "/mcp",
        http_client=httpx2.AsyncClient(headers={"Authorization": f"Bearer {ADMIN_KEY}"}),
    ), mode="legacy") as client:
        check(client.protocol_version == "2025-11-25", "an initialize over HTTP is answered")
        check(len((await client.list_tools()).tools) == len(EXPECTED), "tools over HTTP, legacy")

    status, headers, body = raw_post("/mcp", {})
    check(status == 401, f"no key: {status}")
    check(headers.get("WWW-Authenticate", "").startswith("Bearer"), "401 carries the challenge")
    check(json.loads(body)["code"] == "UNAUTHORIZED", "401 has the API's error body")
    status, headers, _ = raw_post("/mcp", {"Authorization": "Bearer riq_nope_nope"})
    check(status == 401 and "invalid_token" in headers.get("WWW-Authenticate", ""),
          f"a wrong key: {status}")
    status, _, body = raw_post("/mcp", {
        "Authorization": f"Bearer {ADMIN_KEY}", "Origin": "https://evil.example",
    })
    check(status == 403, f"a foreign Origin: {status}")
    check(json.loads(body)["code"] == "FORBIDDEN", "403 has the API's error body")
    status, _, _ = raw_post("/mcp", {"Authorization": f"Bearer {ADMIN_KEY}"})
    check(status == 200, f"a ping with a key and no Origin: {status}")
    print("mcp client: http: 401 without a key, 403 for a foreign Origin")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError as failure:
        print(f"mcp client: FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
