// Measures one ACP agent from the client side, on the official ACP SDK
// (@agentclientprotocol/sdk, pinned in package.json / package-lock.json):
//
//   node tests/clients/acp_measure.mjs [--sessions K] [--prompt TEXT] [--cwd DIR]
//        [--permission allow|reject|cancel] [--timeout-ms MS] [--gap-ms MS] [--label NAME]
//        -- <agent cmd> <args...>
//
// The same options may come from the environment: ACP_SESSIONS, ACP_PROMPT, ACP_CWD,
// ACP_PERMISSION, ACP_TIMEOUT_MS, ACP_GAP_MS, ACP_LABEL (flags win). --gap-ms pauses before
// each session/new (default 0: back to back), as a user does between opening threads: what
// an agent prepares while idle (a spare session) shows only with a gap.
// The agent inherits this process's environment (HOME, ANTHROPIC_BASE_URL, ... are the
// caller's business); its stderr goes to ACP_AGENT_STDERR (a file) if set, else only its
// tail is kept for error reports.
//
// For ONE agent in one run it measures, in milliseconds:
//   - spawn -> `initialize` answered;
//   - for each of K sessions, in turn: from the `session/new` request, `session/new`
//     answered, the first `agent_message_chunk` of a short prompt, and `session/prompt`
//     answered (the prompt is sent as soon as `session/new` is answered);
//   - a second prompt in the first session (warm): first chunk and answer, from its request;
//   - the RSS of the agent's whole process tree (sum of VmRSS over the spawned process and
//     its /proc descendants) after `initialize` and after the K sessions exist, and the
//     increase per session;
//   - the ordered `sessionUpdate` kinds the client received during the first session's
//     first turn (and those of the warm turn), with each turn's stopReason.
// Permission requests are answered by the policy (allow: the first `allow_once` option;
// reject: the first `reject_once` option; cancel: outcome cancelled) and all are logged.
// Prints one JSON object on stdout; exits non-zero (still printing the object, with
// `error`) when a step fails.

import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { performance } from 'node:perf_hooks';

import { client, methods, ndJsonStream, PROTOCOL_VERSION } from '@agentclientprotocol/sdk';

// ---- options
const argv = process.argv.slice(2);
const dashdash = argv.indexOf('--');
if (dashdash < 0 || dashdash === argv.length - 1) {
  console.error('usage: node acp_measure.mjs [options] -- <agent command> [args...]');
  process.exit(2);
}
const flagArgs = argv.slice(0, dashdash);
const agentCmd = argv.slice(dashdash + 1);
function flag(name, envName, fallback) {
  const i = flagArgs.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < flagArgs.length) return flagArgs[i + 1];
  return process.env[envName] ?? fallback;
}
const K = Number(flag('sessions', 'ACP_SESSIONS', '3'));
const PROMPT = flag('prompt', 'ACP_PROMPT', 'say hi');
const CWD = flag('cwd', 'ACP_CWD', null) ?? mkdtempSync(join(tmpdir(), 'acp-measure-cwd-'));
const POLICY = flag('permission', 'ACP_PERMISSION', 'allow');
const TIMEOUT_MS = Number(flag('timeout-ms', 'ACP_TIMEOUT_MS', '120000'));
const GAP_MS = Number(flag('gap-ms', 'ACP_GAP_MS', '0'));
const LABEL = flag('label', 'ACP_LABEL', agentCmd.join(' '));

const out = {
  label: LABEL,
  agent: agentCmd,
  cwd: CWD,
  sessions: K,
  gapMs: GAP_MS,
  prompt: PROMPT,
  protocolVersion: PROTOCOL_VERSION,
};

// ---- timing and process tree
const t = () => performance.now();
const round = (x) => (x == null ? null : Math.round(x * 10) / 10);

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// pid -> ppid for every process now; then the descendants of `root`, root included.
function processTree(root) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(name));
  }
  const tree = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop();
    tree.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return tree;
}

function treeRss(root) {
  let kb = 0;
  const procs = [];
  for (const pid of processTree(root)) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
      const name = /^Name:\s+(.*)$/m.exec(status)?.[1] ?? '?';
      let exe = null;
      try {
        exe = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
      } catch {
        // gone meanwhile
      }
      kb += rss;
      procs.push({ pid, name, exe, rssKb: rss });
    } catch {
      // gone meanwhile
    }
  }
  return { rssMb: round(kb / 1024), processes: procs.length, procs };
}

// ---- the agent
const stderrFile = process.env.ACP_AGENT_STDERR ? openSync(process.env.ACP_AGENT_STDERR, 'a') : null;
let stderrTail = '';
const tSpawn = t();
const child = spawn(agentCmd[0], agentCmd.slice(1), {
  cwd: CWD,
  stdio: ['pipe', 'pipe', 'pipe'],
  // Its own process group, so that the whole tree can be ended at the end.
  detached: true,
});
let childExit = null;
const exited = new Promise((resolve) => {
  child.on('exit', (code, signal) => {
    childExit = { code, signal, atMs: round(t() - tSpawn) };
    resolve();
  });
});
child.on('error', (error) => {
  childExit = { error: String(error) };
});
child.stderr.on('data', (chunk) => {
  if (stderrFile !== null) writeSync(stderrFile, chunk);
  stderrTail = (stderrTail + chunk.toString()).slice(-4000);
});

// ---- what the client hears
const updates = []; // { atMs, sessionId, kind }
const perSession = new Map(); // sessionId -> { firstChunkAt }
const permissionLog = [];
let listeners = [];

const app = client({ name: 'acp-measure' })
  .onNotification(methods.client.session.update, ({ params }) => {
    const now = t();
    const kind = params.update?.sessionUpdate;
    updates.push({ at: now, sessionId: params.sessionId, kind });
    const s = perSession.get(params.sessionId);
    if (s && kind === 'agent_message_chunk' && s.firstChunkAt == null) s.firstChunkAt = now;
    for (const listener of listeners) listener(params, now);
  })
  .onRequest(methods.client.session.requestPermission, ({ params }) => {
    const options = params.options ?? [];
    let outcome;
    const pick = (kind) => options.find((o) => o.kind === kind);
    if (POLICY === 'allow' && pick('allow_once')) {
      outcome = { outcome: 'selected', optionId: pick('allow_once').optionId };
    } else if (POLICY === 'reject' && pick('reject_once')) {
      outcome = { outcome: 'selected', optionId: pick('reject_once').optionId };
    } else {
      outcome = { outcome: 'cancelled' };
    }
    permissionLog.push({
      atMs: round(t() - tSpawn),
      sessionId: params.sessionId,
      toolCall: { toolCallId: params.toolCall?.toolCallId, title: params.toolCall?.title, kind: params.toolCall?.kind },
      options: options.map((o) => ({ optionId: o.optionId, kind: o.kind, name: o.name })),
      answered: outcome,
    });
    return { outcome };
  });

const stream = ndJsonStream(Writable.toWeb(child.stdin), Readable.toWeb(child.stdout));
const connection = app.connect(stream);
const agent = connection.agent;

// The kinds of the updates of `sessionId` received in [from, to].
function kindsBetween(sessionId, from, to) {
  return updates.filter((u) => u.sessionId === sessionId && u.at >= from && u.at <= to).map((u) => u.kind);
}
// Consecutive repeats folded: ["a","a","b"] -> ["a x2","b"].
function folded(kinds) {
  const outList = [];
  for (const k of kinds) {
    const last = outList[outList.length - 1];
    if (last && last.kind === k) last.n += 1;
    else outList.push({ kind: k, n: 1 });
  }
  return outList.map(({ kind, n }) => (n > 1 ? `${kind} x${n}` : kind));
}

async function prompt(sessionId, text) {
  perSession.get(sessionId).firstChunkAt = null;
  const t0 = t();
  const response = await withTimeout(
    agent.request(methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text }] }),
    TIMEOUT_MS,
    `session/prompt in ${sessionId}`,
  );
  const t1 = t();
  const firstChunkAt = perSession.get(sessionId).firstChunkAt;
  return { t0, t1, response, firstChunkAt };
}

async function main() {
  const tInit0 = t();
  const init = await withTimeout(
    agent.request(methods.agent.initialize, {
      protocolVersion: PROTOCOL_VERSION,
      clientCapabilities: { fs: { readTextFile: false, writeTextFile: false }, terminal: false },
      clientInfo: { name: 'acp-measure', version: '0.0.0' },
    }),
    TIMEOUT_MS,
    'initialize',
  );
  const tInit1 = t();
  out.initialize = {
    spawnToAnswerMs: round(tInit1 - tSpawn),
    requestToAnswerMs: round(tInit1 - tInit0),
    protocolVersion: init.protocolVersion,
    agentInfo: init.agentInfo ?? null,
    agentCapabilities: init.agentCapabilities ?? null,
    authMethods: (init.authMethods ?? []).map((m) => m.id),
  };
  out.rssAfterInitialize = treeRss(child.pid);

  out.sessionRuns = [];
  let firstSession = null;
  let firstTurn = null;
  for (let i = 0; i < K; i += 1) {
    if (GAP_MS > 0) await new Promise((r) => setTimeout(r, GAP_MS));
    const tNew0 = t();
    const created = await withTimeout(
      agent.request(methods.agent.session.new, { cwd: CWD, mcpServers: [] }),
      TIMEOUT_MS,
      `session/new #${i + 1}`,
    );
    const tNew1 = t();
    const sessionId = created.sessionId;
    perSession.set(sessionId, { firstChunkAt: null });
    const turn = await prompt(sessionId, PROMPT);
    out.sessionRuns.push({
      sessionId,
      newAnsweredMs: round(tNew1 - tNew0),
      firstChunkMs: turn.firstChunkAt == null ? null : round(turn.firstChunkAt - tNew0),
      promptAnsweredMs: round(turn.t1 - tNew0),
      promptOnlyMs: round(turn.t1 - turn.t0),
      stopReason: turn.response.stopReason,
      modes: created.modes?.availableModes?.map((m) => m.id) ?? null,
    });
    if (i === 0) {
      firstSession = sessionId;
      firstTurn = turn;
    }
  }

  // Updates of the first turn that arrive after its answer are ones a client must still
  // apply: list those seen until the warm prompt (after a moment to let them arrive).
  await new Promise((r) => setTimeout(r, 200));
  const beforeWarm = t();
  out.firstTurn = {
    sessionId: firstSession,
    stopReason: firstTurn.response.stopReason,
    kinds: kindsBetween(firstSession, firstTurn.t0, firstTurn.t1),
    kindsFolded: folded(kindsBetween(firstSession, firstTurn.t0, firstTurn.t1)),
    kindsAfterAnswer: folded(kindsBetween(firstSession, firstTurn.t1 + 0.001, beforeWarm)),
  };

  out.rssAfterSessions = treeRss(child.pid);
  out.rssPerSessionMb = round(out.rssAfterSessions.rssMb / K);
  out.rssIncreasePerSessionMb = round((out.rssAfterSessions.rssMb - out.rssAfterInitialize.rssMb) / K);

  const warm = await prompt(firstSession, PROMPT);
  out.warmPrompt = {
    sessionId: firstSession,
    firstChunkMs: warm.firstChunkAt == null ? null : round(warm.firstChunkAt - warm.t0),
    answeredMs: round(warm.t1 - warm.t0),
    stopReason: warm.response.stopReason,
    kindsFolded: folded(kindsBetween(firstSession, warm.t0, warm.t1)),
  };
}

function summary() {
  const runs = out.sessionRuns ?? [];
  const med = (xs) => {
    const s = xs.filter((x) => x != null).sort((a, b) => a - b);
    if (!s.length) return null;
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : round((s[m - 1] + s[m]) / 2);
  };
  out.summary = {
    initializeMs: out.initialize?.spawnToAnswerMs ?? null,
    newAnsweredMsMedian: med(runs.map((r) => r.newAnsweredMs)),
    firstChunkMsMedian: med(runs.map((r) => r.firstChunkMs)),
    promptAnsweredMsMedian: med(runs.map((r) => r.promptAnsweredMs)),
    firstSessionPromptAnsweredMs: runs[0]?.promptAnsweredMs ?? null,
    warmAnsweredMs: out.warmPrompt?.answeredMs ?? null,
    warmFirstChunkMs: out.warmPrompt?.firstChunkMs ?? null,
    rssPerSessionMb: out.rssPerSessionMb ?? null,
    rssIncreasePerSessionMb: out.rssIncreasePerSessionMb ?? null,
  };
}

let status = 0;
try {
  await main();
} catch (error) {
  status = 1;
  out.error = String(error?.stack ?? error);
  out.agentStderrTail = stderrTail;
}
out.permissionRequests = permissionLog;
summary();

// Ending: close the agent's stdin (the ACP way to end), then signal its process group.
connection.close();
try {
  child.stdin.end();
} catch {
  // already closed
}
const tEnd = t();
await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
out.exitAfterStdinCloseMs = childExit ? round(t() - tEnd) : null;
out.agentExit = childExit;
for (const signal of ['SIGTERM', 'SIGKILL']) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    break; // the group is gone
  }
  await new Promise((r) => setTimeout(r, 1000));
}
// Per-process RSS detail only on demand: it is long.
if (!process.env.ACP_PROCS) {
  delete out.rssAfterInitialize?.procs;
  delete out.rssAfterSessions?.procs;
}
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
process.exit(status);
