// Drives claude-coded's ACP surface from acpx (npm `acpx`, pinned in package.json), a
// headless ACP client nobody here wrote, as an orchestrator runs it: `acpx --agent
// '<claude-coded --surface acp>' exec '<prompt>'`, with the real CLI as the child, offline
// on the mock Messages API. Run by scripts/test-mcp-clients.sh:
//   CLAUDE_CODED_BIN=... CLAUDE_BIN=... MOCK_API_URL=... node tests/clients/acpx_check.mjs
// Prints one line per check and a closing `N passed, M failed`; exits non-zero on failure.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CODED = process.env.CLAUDE_CODED_BIN;
const REAL = process.env.CLAUDE_BIN ?? process.env.CLAUDE_REAL_BIN;
const MOCK_API_URL = process.env.MOCK_API_URL;
if (!CODED || !REAL || !MOCK_API_URL) {
  console.error('set CLAUDE_CODED_BIN, CLAUDE_BIN and MOCK_API_URL');
  process.exit(2);
}
const ACPX = fileURLToPath(new URL('./node_modules/.bin/acpx', import.meta.url));

const results = { passed: 0, failed: 0 };
function check(name, ok, detail) {
  if (ok) {
    results.passed += 1;
    console.log(`ok - acpx: ${name}`);
  } else {
    results.failed += 1;
    console.log(`not ok - acpx: ${name}`);
    for (const line of String(detail).split('\n').slice(-30)) console.log(`#   ${line}`);
  }
}

// A fresh HOME and project; the environment keeps the real CLI offline on the mock.
const home = mkdtempSync(join(tmpdir(), 'acpx-home-'));
const project = join(home, 'project');
mkdirSync(project);
const env = {
  PATH: process.env.PATH,
  HOME: home,
  ANTHROPIC_BASE_URL: MOCK_API_URL,
  ANTHROPIC_API_KEY: 'test-key',
  DISABLE_TELEMETRY: '1',
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  DISABLE_AUTOUPDATER: '1',
};
const agent = `${CODED} --surface acp --claude-bin ${REAL}`;

function acpx(...args) {
  return spawnSync(ACPX, ['--agent', agent, '--format', 'json', '--timeout', '60', ...args], {
    cwd: project,
    env,
    encoding: 'utf8',
    timeout: 90_000,
  });
}

/// The JSON-RPC messages acpx printed (one per line), and the rest of its output.
function messages(run) {
  return run.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      try {
        return JSON.parse(line);
      } catch {
        return {};
      }
    });
}

try {
  const said = acpx('--approve-all', 'exec', 'say hi');
  const seen = messages(said);
  const texts = seen
    .filter((m) => m.params?.update?.sessionUpdate === 'agent_message_chunk')
    .map((m) => m.params.update.content.text)
    .join('');
  const answer = seen.find((m) => m.result?.stopReason);
  check(
    'exec: the answer streams as agent_message_chunk and the prompt ends end_turn',
    said.status === 0 && texts.includes('to: say hi') && answer?.result.stopReason === 'end_turn',
    `${said.status} ${said.stdout}\n${said.stderr}`,
  );

  const ran = acpx('--approve-all', 'exec', 'RUN_TOOL touch by-acpx.txt');
  const asked = messages(ran).find((m) => m.method === 'session/request_permission');
  check(
    'exec --approve-all: the permission request is approved and the real Bash tool runs',
    ran.status === 0 && asked !== undefined && existsSync(join(project, 'by-acpx.txt')),
    `${ran.status} ${ran.stdout}\n${ran.stderr}`,
  );

  // acpx exits non-zero (5) when it denied a permission; the turn itself ends normally.
  const denied = acpx('--deny-all', 'exec', 'RUN_TOOL touch never-by-acpx.txt');
  const deniedSeen = messages(denied);
  const rejected = deniedSeen.find((m) => m.result?.outcome?.optionId?.startsWith('reject'));
  const ended = deniedSeen.find((m) => m.result?.stopReason);
  check(
    'exec --deny-all: the permission request is rejected, the tool does not run, the turn ends',
    rejected !== undefined &&
      ended?.result.stopReason === 'end_turn' &&
      !existsSync(join(project, 'never-by-acpx.txt')),
    `${denied.status} ${denied.stdout}\n${denied.stderr}`,
  );
} finally {
  rmSync(home, { recursive: true, force: true });
}

console.log(`${results.passed} passed, ${results.failed} failed`);
process.exit(results.failed === 0 ? 0 : 1);
