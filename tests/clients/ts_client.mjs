// Drives claude-coded's MCP surface from the official TypeScript SDK
// (@modelcontextprotocol/sdk, pinned in package.json / package-lock.json), with the CLI
// double as the bridge's child, and the real CLI as the child (offline, on the mock
// Messages API) for the permission questions. Run by scripts/test-mcp-clients.sh:
//   CLAUDE_CODED_BIN=... CLAUDE_DOUBLE_BIN=... CLAUDE_REAL_BIN=... MOCK_API_URL=... \
//     node tests/clients/ts_client.mjs
// Prints one line per check and a closing `N passed, M failed`; exits non-zero on failure.
// Any non-JSON byte on the bridge's stdout reaches `onerror` and fails the run.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, mkdirSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';

const BRIDGE = process.env.CLAUDE_CODED_BIN;
const DOUBLE = process.env.CLAUDE_DOUBLE_BIN;
const REAL = process.env.CLAUDE_REAL_BIN;
const MOCK_API_URL = process.env.MOCK_API_URL;
if (!BRIDGE || !DOUBLE || !REAL || !MOCK_API_URL) {
  console.error('set CLAUDE_CODED_BIN, CLAUDE_DOUBLE_BIN, CLAUDE_REAL_BIN and MOCK_API_URL');
  process.exit(2);
}

const results = { passed: 0, failed: 0 };
const transportErrors = [];

async function check(name, body) {
  try {
    await body();
    results.passed += 1;
    console.log(`ok - ts: ${name}`);
  } catch (error) {
    results.failed += 1;
    console.log(`not ok - ts: ${name}: ${error?.stack ?? error}`);
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// The environment that keeps the real CLI offline, on the mock Messages API.
function realCliEnv(dir) {
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  return {
    ANTHROPIC_BASE_URL: MOCK_API_URL,
    ANTHROPIC_API_KEY: 'test-key',
    DISABLE_TELEMETRY: '1',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    TMPDIR: tmp,
  };
}

async function connect(dir, capabilities = {}, { real = false, args = [] } = {}) {
  const cwd = join(dir, 'cwd');
  mkdirSync(cwd, { recursive: true });
  const transport = new StdioClientTransport({
    command: BRIDGE,
    args: ['--claude-bin', real ? REAL : DOUBLE, '--state-dir', join(dir, 'state'), '--cwd', cwd, ...args],
    env: { RUST_LOG: 'warn', HOME: dir, ...(real ? realCliEnv(dir) : {}) },
    stderr: 'inherit',
  });
  const client = new Client({ name: 'claude-coded-ts-test', version: '0.0.0' }, { capabilities });
  // Framing errors (a line that is not JSON, or not JSON-RPC) are what this run must never
  // see. Other errors reported here are protocol races a client tolerates, such as a
  // progress notification already in flight when the client aborted its request.
  client.onerror = (error) => {
    if (['SyntaxError', 'ZodError'].includes(error?.name)) transportErrors.push(error);
  };
  await withTimeout(client.connect(transport), 20000, 'connect');
  return client;
}

const text = (result) => result.content.find((c) => c.type === 'text')?.text;

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'claude-coded-ts-'));
  let client;
  try {
    await check('initialize', async () => {
      client = await connect(dir);
      const server = client.getServerVersion();
      assert.equal(server.name, 'claude-coded');
      assert.ok(server.title && server.version);
      assert.match(client.getInstructions() ?? '', /ask/);
      assert.ok(client.getServerCapabilities()?.tools);
    });
    if (!client) return;

    await check('tools/list', async () => {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['ask', 'cancel', 'events', 'sessions', 'status', 'wait']);
      for (const tool of tools) {
        assert.ok(tool.outputSchema, `${tool.name} outputSchema`);
        assert.equal(tool.annotations?.readOnlyHint, !['ask', 'sessions', 'cancel'].includes(tool.name), `${tool.name} readOnlyHint`);
      }
    });

    await check('call status', async () => {
      const result = await client.callTool({ name: 'status', arguments: {} });
      assert.ok(!result.isError);
      assert.ok(['starting', 'ready'].includes(result.structuredContent.state));
      assert.equal(result.structuredContent.full, undefined);
      const full = await client.callTool({ name: 'status', arguments: { full: true } });
      assert.ok(full.structuredContent.full.client.name);
    });

    await check('call ask with progress', async () => {
      const progress = [];
      const result = await client.callTool(
        { name: 'ask', arguments: { prompt: 'RUN_TOOL ls' } },
        undefined,
        { onprogress: (p) => progress.push(p) },
      );
      assert.ok(!result.isError);
      assert.equal(result.structuredContent.ok, true);
      assert.equal(text(result), result.structuredContent.result);
      const values = progress.map((p) => p.progress);
      assert.ok(values.length >= 4, `progress count ${values.length}`);
      assert.ok(values.every((v, i) => i === 0 || v > values[i - 1]), `increasing ${values}`);
      const messages = progress.map((p) => p.message);
      assert.match(messages[0], /^turn started/);
      assert.ok(messages.includes('tool use: Bash'), messages.join(' | '));
      assert.equal(messages.at(-1), 'result: success');
    });

    await check('ask on two sessions at once: both answered, each its own sessionId', async () => {
      // A slow turn (~0.9 s) in one session and a quick one in another, started together:
      // the quick one is answered first, each in a conversation of its own.
      const done = [];
      const askIn = (session, prompt) =>
        client.callTool({ name: 'ask', arguments: { session, prompt } }).then((result) => {
          done.push(session);
          return result;
        });
      const [slow, quick] = await withTimeout(
        Promise.all([askIn('ts-slow', 'SLOW ms=300 chunks=3'), askIn('ts-quick', 'quick')]),
        20000,
        'two asks',
      );
      assert.ok(!slow.isError && !quick.isError, JSON.stringify([slow, quick]));
      assert.equal(text(slow), 'slow chunk 1slow chunk 2slow chunk 3');
      assert.match(text(quick), /to: quick$/);
      assert.deepEqual(done, ['ts-quick', 'ts-slow']);
      const ids = { 'ts-slow': slow.structuredContent.sessionId, 'ts-quick': quick.structuredContent.sessionId };
      assert.ok(ids['ts-slow'] && ids['ts-quick'] && ids['ts-slow'] !== ids['ts-quick'], JSON.stringify(ids));
      const listed = await client.callTool({ name: 'sessions', arguments: {} });
      assert.ok(!listed.isError);
      for (const [name, sessionId] of Object.entries(ids)) {
        const found = listed.structuredContent.sessions.find((s) => s.name === name);
        assert.equal(found?.sessionId, sessionId, JSON.stringify(listed.structuredContent));
        assert.match(text(listed), new RegExp(`- ${name}: ready`));
      }
    });

    await check('failed turn is isError with a valid structured result', async () => {
      const result = await client.callTool({ name: 'ask', arguments: { prompt: 'ERR400' } });
      assert.equal(result.isError, true);
      assert.equal(result.structuredContent.ok, false);
      assert.equal(text(result), "Claude Code's turn failed: API error 400: mock 400");
    });

    await check('cancel an ask, then ask again', async () => {
      const controller = new AbortController();
      const call = client.callTool(
        { name: 'ask', arguments: { prompt: 'SLOW 100 100' } },
        undefined,
        {
          signal: controller.signal,
          onprogress: (p) => {
            if (p.message === 'assistant: slow chunk 1') controller.abort('test');
          },
        },
      );
      await assert.rejects(withTimeout(call, 20000, 'cancelled ask'));
      const next = await withTimeout(
        client.callTool({ name: 'ask', arguments: { prompt: 'after' } }),
        20000,
        'ask after cancel',
      );
      assert.ok(!next.isError);
      assert.match(text(next), /^mock reply #\d+ to: after$/);
      const status = await client.callTool({ name: 'status', arguments: {} });
      assert.equal(status.structuredContent.restarts, 0);
    });

    await check('background ask, wait while it runs, wait for its answer', async () => {
      // callTool validates each structuredContent against the tool's outputSchema.
      const started = await client.callTool({ name: 'ask', arguments: { prompt: 'SLOW ms=200 chunks=8', background: true } });
      assert.ok(!started.isError, JSON.stringify(started));
      assert.equal(started.structuredContent.running, true);
      const turnId = started.structuredContent.turnId;
      const early = await client.callTool({ name: 'wait', arguments: { turnId, timeoutMs: 100 } });
      assert.equal(early.structuredContent.running, true, JSON.stringify(early));
      assert.match(text(early), /^Still running after/);
      const done = await withTimeout(
        client.callTool({ name: 'wait', arguments: { turnId, timeoutMs: 20000 } }),
        25000,
        'wait',
      );
      assert.equal(done.structuredContent.running, false, JSON.stringify(done));
      assert.equal(done.structuredContent.answer.result, text(done));
      assert.match(text(done), /^slow chunk 1slow chunk 2/);
    });

    await check('background ask, cancel it, then ask again', async () => {
      const started = await client.callTool({ name: 'ask', arguments: { prompt: 'SLOW 100 100', background: true } });
      const turnId = started.structuredContent.turnId;
      const cancelled = await client.callTool({ name: 'cancel', arguments: { turnId } });
      assert.equal(cancelled.structuredContent.cancelled, true, JSON.stringify(cancelled));
      const after = await client.callTool({ name: 'wait', arguments: { turnId, timeoutMs: 20000 } });
      assert.equal(after.isError, true);
      assert.match(text(after), /-32007/);
      const next = await client.callTool({ name: 'ask', arguments: { prompt: 'after background' } });
      assert.ok(!next.isError);
      assert.match(text(next), /to: after background$/);
    });

    await check('logging/setLevel then notifications/message', async () => {
      const logs = [];
      client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => logs.push(n.params));
      await client.setLoggingLevel('info');
      await client.callTool({ name: 'ask', arguments: { prompt: 'logged' } });
      const deadline = Date.now() + 5000;
      while (!logs.some((l) => l.data?.type === 'turn.started') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(logs.some((l) => l.data?.type === 'turn.started'), JSON.stringify(logs));
      assert.ok(logs.every((l) => l.logger === 'claude-coded' && l.level !== 'debug'));
    });

    await check('call events', async () => {
      const result = await client.callTool({ name: 'events', arguments: { since: 0, level: 'info' } });
      assert.ok(!result.isError);
      assert.ok(result.structuredContent.events.some((e) => e.includes(' turn.cancelled: ')));
    });

    await check('ping', async () => {
      assert.deepEqual(await client.ping(), {});
    });

    await check('stdout carried only JSON-RPC', async () => {
      assert.deepEqual(transportErrors.map(String), []);
    });
  } finally {
    await client?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// Permission questions of the real CLI as form elicitations: the client's answer decides.
async function elicitation() {
  const dir = mkdtempSync(join(tmpdir(), 'claude-coded-ts-'));
  const cwd = join(dir, 'cwd');
  let client;
  try {
    client = await connect(dir, { elicitation: { form: {} } }, { real: true });
    const answers = [];
    const forms = [];
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      forms.push(request.params);
      return answers.shift();
    });
    const ask = async (file) => {
      const result = await withTimeout(
        client.callTool({ name: 'ask', arguments: { prompt: `RUN_TOOL touch ${file}` } }),
        30000,
        'ask',
      );
      assert.ok(!result.isError, JSON.stringify(result));
      assert.equal(answers.length, 0, 'a planned answer was not asked for');
      return text(result);
    };
    await check('real CLI, elicitation: allow once runs the command', async () => {
      answers.push({ action: 'accept', content: { decision: 'Allow once' } });
      const reply = await ask('ts.txt');
      assert.ok(reply.includes('is_error=False'), reply);
      assert.ok(existsSync(join(cwd, 'ts.txt')), 'the command did not run');
      assert.ok(forms.at(-1).message.includes('run `touch ts.txt`'), forms.at(-1).message);
    });
    await check('real CLI, elicitation: deny with a message for the agent', async () => {
      answers.push({ action: 'accept', content: { decision: 'Deny', message: 'not from ts' } });
      const reply = await ask('ts-denied.txt');
      assert.ok(reply.includes('is_error=True') && reply.includes('not from ts'), reply);
      assert.ok(!existsSync(join(cwd, 'ts-denied.txt')), 'a denied command ran');
    });
    await check('real CLI, elicitation: allow for the session is not asked again', async () => {
      answers.push({ action: 'accept', content: { decision: 'Allow for the rest of this session' } });
      await ask('ts-kept.txt');
      unlinkSync(join(cwd, 'ts-kept.txt'));
      const asked = forms.length;
      const reply = await ask('ts-kept.txt');
      assert.equal(forms.length, asked, 'the same command was asked again');
      assert.ok(reply.includes('is_error=False') && existsSync(join(cwd, 'ts-kept.txt')), reply);
    });
  } finally {
    await client?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
await elicitation();
console.log(`${results.passed} passed, ${results.failed} failed`);
process.exit(results.failed === 0 ? 0 : 1);
