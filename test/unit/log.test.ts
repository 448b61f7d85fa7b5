import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonLogger } from '../../src/core/log.ts';

test('one JSON line per event in the Cloud Logging format, secrets redacted', () => {
  const lines: string[] = [];
  const log = jsonLogger((l) => lines.push(l));
  log('INFO', 'deployed', { requestId: 'r1', target: 'web', cluster: 'prod', durationMs: 12, trace: 'projects/p/traces/abc', token: 'ya29.secret', authorization: 'Bearer x' });
  assert.equal(lines.length, 1);
  assert.ok(lines[0]!.endsWith('\n'));
  const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(entry.severity, 'INFO');
  assert.equal(entry.message, 'deployed');
  assert.equal(entry['logging.googleapis.com/trace'], 'projects/p/traces/abc');
  assert.equal(entry.requestId, 'r1');
  assert.equal(entry.durationMs, 12);
  assert.equal(entry.token, '[redacted]');
  assert.equal(entry.authorization, '[redacted]');
  assert.ok(!lines[0]!.includes('ya29.secret'));
});
