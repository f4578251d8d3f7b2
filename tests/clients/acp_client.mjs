// Drives claude-coded's ACP surface (`serve --surface acp`, Agent Client Protocol v1) from
// the official ACP SDK (@agentclientprotocol/sdk, pinned in package.json /
// package-lock.json), with the real CLI as the child, offline on the mock Messages API.
// Run by scripts/test-mcp-clients.sh:
//   CLAUDE_CODED_BIN=... CLAUDE_BIN=... MOCK_API_URL=... node tests/clients/acp_client.mjs
// Prints one line per check and a closing `N passed, M failed`; exits non-zero on failure.
// A failed check is followed by `#` lines: the JSON-RPC messages of that check, as they
// went over the wire (-> to claude-coded, <- from it), and the tail of its stderr;
// ACP_WIRE=<file> writes every message of the run there.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';

import { client, methods, ndJsonStream, PROTOCOL_VERSION } from '@agentclientprotocol/sdk';
import Ajv2020 from 'ajv/dist/2020.js';

const CODED = process.env.CLAUDE_CODED_BIN;
const REAL = process.env.CLAUDE_BIN ?? process.env.CLAUDE_REAL_BIN;
const MOCK_API_URL = process.env.MOCK_API_URL;
if (!CODED || !REAL || !MOCK_API_URL) {
  console.error('set CLAUDE_CODED_BIN, CLAUDE_BIN and MOCK_API_URL');
  process.exit(2);
}

const results = { passed: 0, failed: 0 };
const started = []; // every agent of the run, for the closing schema check
let current = null; // the agent the running check talks to, for the failure report

async function check(name, body) {
  const wireFrom = current?.wire.length ?? 0;
  const agentAtStart = current;
  try {
    await body();
    results.passed += 1;
    console.log(`ok - acp: ${name}`);
  } catch (error) {
    results.failed += 1;
    console.log(`not ok - acp: ${name}: ${error?.stack ?? error}`);
    const agent = current ?? agentAtStart;
    if (agent) {
      const from = agent === agentAtStart ? wireFrom : 0;
      const wire = agent.wire.slice(from);
      const shown = wire.length > 60 ? [...wire.slice(0, 20), '... (cut) ...', ...wire.slice(-40)] : wire;
      for (const line of shown) console.log(`#   ${typeof line === 'string' ? line : line.slice(0, 600)}`);
      const tail = agent.stderr.split('\n').slice(-15).join('\n').trim();
      if (tail) for (const line of tail.split('\n')) console.log(`# stderr: ${line}`);
    }
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The environment that keeps the real CLI offline, on the mock Messages API.
function agentEnv(dir) {
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  return {
    PATH: process.env.PATH,
    HOME: dir,
    TMPDIR: tmp,
    RUST_LOG: 'warn',
    ANTHROPIC_BASE_URL: MOCK_API_URL,
    ANTHROPIC_API_KEY: 'test-key',
    DISABLE_TELEMETRY: '1',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
  };
}

// Starts `claude-coded serve` on stdio and connects the SDK's client to it. Every message
// both ways is kept in `wire` (JSON text, in order) for the checks and failure reports.
// `permissionAnswers` is a queue of `allow`/`reject`/`cancel`: each session/request_permission
// takes the next (none left: cancelled).
function startAgent(dir, { surface = ['--surface', 'acp'], args = [] } = {}) {
  const cwd = join(dir, 'cwd');
  mkdirSync(cwd, { recursive: true });
  // ACP_CLIENT_AGENT (a JSON array) runs another agent instead, to check these checks
  // against a reference such as claude-agent-acp; the claude-coded specifics then fail.
  const other = process.env.ACP_CLIENT_AGENT ? JSON.parse(process.env.ACP_CLIENT_AGENT) : null;
  const [command, ...commandArgs] = other ?? [
    CODED,
    'serve',
    ...surface,
    '--claude-bin',
    REAL,
    '--state-dir',
    join(dir, 'state'),
    '--cwd',
    cwd,
    ...args,
  ];
  if (other) {
    // The reference's sessions start in the mode the settings name (else `auto`, which
    // asks nothing here): the permission checks need `default`, as claude-coded gets.
    mkdirSync(join(dir, '.claude'), { recursive: true });
    writeFileSync(join(dir, '.claude', 'settings.json'), JSON.stringify({ permissions: { defaultMode: 'default' } }));
  }
  const child = spawn(command, commandArgs, {
    cwd,
    env: { ...agentEnv(dir), ...(other ? { CLAUDE_CODE_EXECUTABLE: REAL, IS_SANDBOX: '1' } : {}) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const agent = {
    child,
    cwd,
    wire: [],
    stderr: '',
    updates: [], // { index (in wire), sessionId, update }
    permissionRequests: [], // { index, params, answered }
    permissionAnswers: [],
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.stderr.on('data', (chunk) => {
    agent.stderr = (agent.stderr + chunk.toString()).slice(-20000);
  });
  child.on('error', (error) => {
    agent.stderr += `\nspawn error: ${error}`;
  });

  const base = ndJsonStream(Writable.toWeb(child.stdin), Readable.toWeb(child.stdout));
  const tapIn = new TransformStream({
    transform(message, controller) {
      agent.wire.push(`<- ${JSON.stringify(message)}`);
      controller.enqueue(message);
    },
  });
  const tapOut = new TransformStream({
    transform(message, controller) {
      agent.wire.push(`-> ${JSON.stringify(message)}`);
      controller.enqueue(message);
    },
  });
  tapOut.readable.pipeTo(base.writable).catch(() => {});
  const stream = { readable: base.readable.pipeThrough(tapIn), writable: tapOut.writable };

  const app = client({ name: 'claude-coded-acp-test' })
    .onNotification(methods.client.session.update, ({ params }) => {
      agent.updates.push({ index: agent.wire.length - 1, sessionId: params.sessionId, update: params.update });
    })
    .onRequest(methods.client.session.requestPermission, ({ params }) => {
      const policy = agent.permissionAnswers.shift() ?? 'cancel';
      const kind = { allow: 'allow_once', reject: 'reject_once' }[policy];
      const option = params.options.find((o) => o.kind === kind);
      const outcome = option ? { outcome: 'selected', optionId: option.optionId } : { outcome: 'cancelled' };
      agent.permissionRequests.push({ index: agent.wire.length - 1, params, answered: outcome });
      return { outcome };
    });
  agent.connection = app.connect(stream);
  agent.request = (method, params, ms = 60000) =>
    withTimeout(agent.connection.agent.request(method, params), ms, `${method} ${JSON.stringify(params).slice(0, 120)}`);
  agent.notify = (method, params) => agent.connection.agent.notify(method, params);
  agent.initialize = () =>
    agent.request(methods.agent.initialize, {
      protocolVersion: PROTOCOL_VERSION,
      clientCapabilities: { fs: { readTextFile: false, writeTextFile: false }, terminal: false },
      clientInfo: { name: 'claude-coded-acp-test', version: '0.0.0' },
    });
  // Ends it the way an editor does: stdin closed; then SIGTERM, then SIGKILL.
  agent.stop = async () => {
    agent.connection.close();
    try {
      child.stdin.end();
    } catch {
      // closed already
    }
    for (const signal of ['SIGTERM', 'SIGKILL']) {
      const done = await Promise.race([agent.exited.then(() => true), sleep(3000).then(() => false)]);
      if (done) return;
      child.kill(signal);
    }
    await agent.exited;
  };
  current = agent;
  started.push(agent);
  return agent;
}

// The ACP v1 JSON Schema the pinned SDK ships, and what each message the agent sends must
// match: its notifications and requests by method, its responses by the method of the
// request they answer.
const schema = JSON.parse(
  readFileSync(new URL('./node_modules/@agentclientprotocol/sdk/schema/v1/schema.json', import.meta.url), 'utf8'),
);
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema(schema, 'acp');
const SENT_BY_AGENT = {
  'session/update': 'SessionNotification',
  'session/request_permission': 'RequestPermissionRequest',
};
const RESPONSE_TO = {
  initialize: 'InitializeResponse',
  'session/new': 'NewSessionResponse',
  'session/load': 'LoadSessionResponse',
  'session/list': 'ListSessionsResponse',
  'session/close': 'CloseSessionResponse',
  'session/prompt': 'PromptResponse',
};

// Every message from `agent` that breaks the schema: [{ message, type, errors }].
function schemaViolations(agent) {
  const requested = new Map(); // our request id -> method
  const found = [];
  for (const line of agent.wire) {
    const m = JSON.parse(line.slice(3));
    if (line.startsWith('-> ')) {
      if (m.method !== undefined && m.id !== undefined) requested.set(m.id, m.method);
      continue;
    }
    let type;
    let value;
    if (m.method !== undefined) {
      type = SENT_BY_AGENT[m.method];
      value = m.params;
      if (m.method.startsWith('_')) continue; // an extension method: any params
      if (!type) {
        found.push({ message: line, type: '(a method the agent may not send)', errors: [] });
        continue;
      }
    } else if (m.error !== undefined) {
      type = 'Error';
      value = m.error;
    } else {
      type = RESPONSE_TO[requested.get(m.id)];
      value = m.result;
      if (!type) continue; // an answer to a method not listed here
    }
    const validate = ajv.getSchema(`acp#/$defs/${type}`);
    if (!validate(value)) found.push({ message: line, type, errors: validate.errors });
  }
  return found;
}

// The position in the wire of the response to the last request of `method` sent so far.
function responseIndex(agent, method) {
  let id = null;
  for (const line of agent.wire) {
    if (line.startsWith('-> ')) {
      const m = JSON.parse(line.slice(3));
      if (m.method === method && m.id !== undefined) id = m.id;
    }
  }
  return agent.wire.findIndex((line) => {
    if (!line.startsWith('<- ')) return false;
    const m = JSON.parse(line.slice(3));
    return m.id === id && m.method === undefined;
  });
}

const textOf = (updates) =>
  updates
    .map((u) => (u.update.content?.type === 'text' ? u.update.content.text : ''))
    .join('');

// One prompt turn: its response, the updates of the session seen during it, and where
// in the wire the response was.
async function prompt(agent, sessionId, text, ms = 60000) {
  const from = agent.updates.length;
  const response = await agent.request(methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text }] }, ms);
  const updates = agent.updates.slice(from).filter((u) => u.sessionId === sessionId);
  return { response, updates, responseAt: responseIndex(agent, methods.agent.session.prompt) };
}

function surfaceAvailable() {
  try {
    const help = execFileSync(CODED, ['serve', '--help'], { encoding: 'utf8' });
    return /^ +- acp: /m.test(help);
  } catch {
    return false;
  }
}

async function main() {
  if (!process.env.ACP_CLIENT_AGENT && !surfaceAvailable()) {
    results.failed += 1;
    console.log(`not ok - acp: ${CODED} has no ACP surface (serve --help lists no \`acp\` surface)`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'claude-coded-acp-'));
  let agent = startAgent(dir, { args: ['--permission-mode', 'default'] });
  const sessions = [];
  let first = null; // the session the restart check reloads
  try {
    let initialized = false;
    await check('initialize: protocolVersion 1, loadSession', async () => {
      const init = await agent.initialize();
      initialized = true;
      assert.equal(init.protocolVersion, 1);
      assert.equal(init.agentCapabilities?.loadSession, true, JSON.stringify(init.agentCapabilities));
    });
    if (!initialized) return;

    await check('session/new in the project directory: a sessionId', async () => {
      const created = await agent.request(methods.agent.session.new, { cwd: agent.cwd, mcpServers: [] });
      assert.equal(typeof created.sessionId, 'string');
      assert.ok(created.sessionId.length > 0);
      first = created.sessionId;
      sessions.push(first);
    });
    if (!first) return;

    await check('session/prompt: agent_message_chunk streamed before the answer, end_turn', async () => {
      const turn = await prompt(agent, first, 'say hi');
      assert.equal(turn.response.stopReason, 'end_turn');
      const chunks = turn.updates.filter((u) => u.update.sessionUpdate === 'agent_message_chunk');
      assert.ok(chunks.length >= 1, `no agent_message_chunk; kinds: ${turn.updates.map((u) => u.update.sessionUpdate)}`);
      assert.ok(chunks[0].index < turn.responseAt, `first chunk at ${chunks[0].index}, answer at ${turn.responseAt}`);
      assert.match(textOf(chunks), /mock reply #\d+ to: say hi/);
    });

    await check('session/cancel mid-turn: stopReason cancelled, then the session answers again', async () => {
      const from = agent.updates.length;
      const slow = agent.request(
        methods.agent.session.prompt,
        { sessionId: first, prompt: [{ type: 'text', text: 'SLOW ms=300 chunks=40' }] },
        60000,
      );
      const deadline = Date.now() + 30000;
      while (
        !agent.updates.slice(from).some((u) => u.sessionId === first && u.update.sessionUpdate === 'agent_message_chunk')
      ) {
        if (Date.now() > deadline) throw new Error('no agent_message_chunk within 30 s of the slow prompt');
        await sleep(20);
      }
      const cancelledAt = Date.now();
      await agent.notify(methods.agent.session.cancel, { sessionId: first });
      const response = await withTimeout(slow, 5000, 'the cancelled prompt to answer');
      assert.equal(response.stopReason, 'cancelled', JSON.stringify(response));
      assert.ok(Date.now() - cancelledAt < 5000);
      const next = await prompt(agent, first, 'after cancel');
      assert.equal(next.response.stopReason, 'end_turn');
      assert.match(
        textOf(next.updates.filter((u) => u.update.sessionUpdate === 'agent_message_chunk')),
        /to: after cancel/,
      );
    });

    await check('permission: allow_once runs the tool (tool_call, tool_call_update completed)', async () => {
      const file = join(agent.cwd, 'allowed.txt');
      const asked = agent.permissionRequests.length;
      agent.permissionAnswers.push('allow');
      const turn = await prompt(agent, first, 'RUN_TOOL touch allowed.txt');
      const requests = agent.permissionRequests.slice(asked);
      assert.equal(requests.length, 1, `${requests.length} session/request_permission`);
      const { params } = requests[0];
      assert.equal(params.sessionId, first);
      assert.deepEqual(
        params.options.map((o) => o.kind).sort(),
        ['allow_always', 'allow_once', 'reject_always', 'reject_once'],
        JSON.stringify(params.options),
      );
      for (const o of params.options) assert.equal(o.optionId, o.kind, JSON.stringify(o));
      assert.ok(params.toolCall?.toolCallId, JSON.stringify(params.toolCall));
      assert.equal(turn.response.stopReason, 'end_turn');
      assert.ok(existsSync(file), 'allowed.txt does not exist after the turn');
      const kinds = turn.updates.map((u) => u.update.sessionUpdate);
      const call = turn.updates.find((u) => u.update.sessionUpdate === 'tool_call');
      assert.ok(call, `no tool_call; kinds: ${kinds}`);
      const completed = turn.updates.find(
        (u) =>
          u.update.sessionUpdate === 'tool_call_update' &&
          u.update.toolCallId === call.update.toolCallId &&
          u.update.status === 'completed',
      );
      assert.ok(completed, `no tool_call_update completed for ${call.update.toolCallId}; kinds: ${kinds}`);
      assert.equal(params.toolCall.toolCallId, call.update.toolCallId, 'the permission names another tool call');
    });

    await check('permission: reject_once does not run the tool', async () => {
      const file = join(agent.cwd, 'rejected.txt');
      const asked = agent.permissionRequests.length;
      agent.permissionAnswers.push('reject');
      const turn = await prompt(agent, first, 'RUN_TOOL touch rejected.txt');
      const requests = agent.permissionRequests.slice(asked);
      assert.equal(requests.length, 1, `${requests.length} session/request_permission`);
      assert.ok(!existsSync(file), 'rejected.txt exists: a rejected command ran');
      assert.equal(turn.response.stopReason, 'end_turn', JSON.stringify(turn.response));
      const failed = turn.updates.find(
        (u) => u.update.sessionUpdate === 'tool_call_update' && u.update.status === 'failed',
      );
      assert.ok(failed, `no tool_call_update failed; kinds: ${turn.updates.map((u) => u.update.sessionUpdate)}`);
    });

    await check('session/list: the sessions, with their cwd', async () => {
      const second = await agent.request(methods.agent.session.new, { cwd: agent.cwd, mcpServers: [] });
      sessions.push(second.sessionId);
      // A turn in it too: a session with no turn has no transcript yet (claude-agent-acp,
      // for one, lists only sessions with a transcript).
      assert.equal((await prompt(agent, second.sessionId, 'second session')).response.stopReason, 'end_turn');
      const listed = await agent.request(methods.agent.session.list, {});
      const ids = listed.sessions.map((s) => s.sessionId);
      for (const id of sessions) assert.ok(ids.includes(id), `${id} not in ${JSON.stringify(listed)}`);
      for (const s of listed.sessions.filter((s) => sessions.includes(s.sessionId))) {
        assert.equal(s.cwd, agent.cwd, JSON.stringify(s));
      }
    });

    await check('session/load after a restart: the history replayed before the answer, then a prompt', async () => {
      await agent.stop();
      agent = startAgent(dir, { args: ['--permission-mode', 'default'] });
      const init = await agent.initialize();
      assert.equal(init.agentCapabilities?.loadSession, true);
      const from = agent.updates.length;
      const loaded = await agent.request(methods.agent.session.load, { sessionId: first, cwd: agent.cwd, mcpServers: [] });
      assert.ok(loaded !== undefined);
      const loadAt = responseIndex(agent, methods.agent.session.load);
      const replay = agent.updates.slice(from).filter((u) => u.sessionId === first && u.index < loadAt);
      const user = replay.filter((u) => u.update.sessionUpdate === 'user_message_chunk');
      const said = replay.filter((u) => u.update.sessionUpdate === 'agent_message_chunk');
      assert.match(textOf(user), /say hi/, `user_message_chunk replay: ${JSON.stringify(user.map((u) => u.update))}`);
      assert.match(textOf(said), /mock reply #\d+ to: say hi/, 'the agent message of the first turn was not replayed');
      const late = agent.updates.slice(from).filter((u) => u.sessionId === first && u.index > loadAt);
      assert.ok(
        !late.some((u) => u.update.sessionUpdate === 'user_message_chunk'),
        'user_message_chunk replayed after the load answer',
      );
      const turn = await prompt(agent, first, 'after load');
      assert.equal(turn.response.stopReason, 'end_turn');
      assert.match(
        textOf(turn.updates.filter((u) => u.update.sessionUpdate === 'agent_message_chunk')),
        /to: after load/,
      );
    });

    await check('session/list after the restart: the sessions of the state directory', async () => {
      const listed = await agent.request(methods.agent.session.list, {});
      const ids = listed.sessions.map((s) => s.sessionId);
      for (const id of sessions) assert.ok(ids.includes(id), `${id} not in ${JSON.stringify(listed)}`);
    });

    let closed = false;
    await check('session/close', async () => {
      const response = await agent.request(methods.agent.session.close, { sessionId: first });
      assert.ok(response !== undefined);
      closed = true;
    });

    if (closed) {
      await check('session/prompt to a closed session is refused', async () => {
        await assert.rejects(
          agent.request(methods.agent.session.prompt, { sessionId: first, prompt: [{ type: 'text', text: 'closed?' }] }),
        );
      });
    }
  } finally {
    await agent.stop();
    current = null;
  }

  // The surface chosen from the first message: an `initialize` with an integer
  // protocolVersion is ACP, with no --surface.
  const autoDir = join(dir, 'auto');
  mkdirSync(autoDir, { recursive: true });
  const auto = startAgent(autoDir, { surface: [] });
  await check('no --surface: an ACP initialize is answered as ACP', async () => {
    const init = await auto.initialize();
    assert.equal(init.protocolVersion, 1);
    assert.equal(init.agentCapabilities?.loadSession, true);
  });
  await auto.stop();
  current = null;

  await check('every message from claude-coded matches the ACP v1 schema', async () => {
    const found = started.flatMap(schemaViolations);
    const seen = started.reduce((n, a) => n + a.wire.filter((l) => l.startsWith('<- ')).length, 0);
    assert.ok(seen > 0, 'no message seen');
    assert.equal(
      found.length,
      0,
      found
        .slice(0, 5)
        .map((f) => `${f.type}: ${JSON.stringify(f.errors).slice(0, 600)}\n      in ${f.message.slice(0, 600)}`)
        .join('\n'),
    );
  });
  if (process.env.ACP_WIRE) {
    // Every message of the run, agent by agent, for a reader (ACP_WIRE=<file>).
    writeFileSync(process.env.ACP_WIRE, started.map((a, i) => [`== agent ${i + 1}`, ...a.wire].join('\n')).join('\n') + '\n');
  }
  rmSync(dir, { recursive: true, force: true });
}

await main();
console.log(`${results.passed} passed, ${results.failed} failed`);
process.exit(results.failed === 0 ? 0 : 1);
