import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonLogger, redactText, registerSecret } from '../../src/core/log.ts';

const JWT = 'eyJhbGciOiJSUzI1NiIsImtpZCI6ImFiYyJ9.eyJhdWQiOiJodHRwczovL3guZXhhbXBsZSIsImVtYWlsIjoiYUBiLmMifQ.c2lnbmF0dXJlLWJ5dGVz';

function logged(message: string, fields?: Record<string, unknown>): string {
  const lines: string[] = [];
  jsonLogger((l) => lines.push(l))('WARNING', message, fields);
  assert.equal(lines.length, 1);
  return lines[0]!;
}

test('credentials in the message text are redacted: JWTs and their segments, Bearer values, access tokens', () => {
  for (const [text, secret] of [
    [`invalid ID token: Invalid token signature: ${JWT}`, JWT],
    [`Can't parse token payload '${JWT.split('.')[0]!}`, JWT.split('.')[0]!],
    ['upstream answered 401 to Authorization: Bearer abc.DEF_123-xyz', 'abc.DEF_123-xyz'],
    ['token ya29.a0AfH6SMBx-Yz_0123456789abcdef was refused', 'ya29.a0AfH6SMBx-Yz_0123456789abcdef'],
  ] as const) {
    const line = logged(text);
    assert.ok(!line.includes(secret), line);
    assert.match(line, /\[redacted\]/);
  }
  assert.equal(redactText('header: bearer opaque-value'), 'header: bearer [redacted]');
});

test('string values in fields, nested ones too, are redacted like the message', () => {
  const line = logged('deploy failed', { detail: `sent ${JWT}`, objects: [{ note: 'Bearer zzz-top' }], nested: { deeper: { t: 'ya29.x-y' } } });
  for (const secret of [JWT, 'zzz-top', 'ya29.x-y']) assert.ok(!line.includes(secret), line);
  const entry = JSON.parse(line) as { detail: string; objects: { note: string }[] };
  assert.equal(entry.detail, 'sent [redacted]');
  assert.equal(entry.objects[0]?.note, 'Bearer [redacted]');
});

test('registered secrets are redacted wherever they appear; short values are not registered', () => {
  registerSecret('webhook-secret-for-redact-test');
  registerSecret('short');
  const line = logged('x webhook-secret-for-redact-test y', { a: 'webhook-secret-for-redact-test' });
  assert.ok(!line.includes('webhook-secret-for-redact-test'), line);
  assert.equal(redactText('a short word'), 'a short word');
});

test('a secret holding another, registered after it, is blanked whole (a webhook URL after its token)', () => {
  registerSecret('tokenInsideAWebhookUrl');
  registerSecret('https://hooks.example.com/services/T0/B0?token=tokenInsideAWebhookUrl');
  assert.equal(redactText('posting to https://hooks.example.com/services/T0/B0?token=tokenInsideAWebhookUrl failed'), 'posting to [redacted] failed');
});

test('ordinary log text is left alone', () => {
  const text = 'deployed europe-docker.pkg.dev/my-proj/apps/web:v1.2.3@sha256:0123abcd to web (Deployment web/web configured)';
  assert.equal(redactText(text), text);
  const entry = JSON.parse(logged(text, { requestId: 'r-1', durationMs: 3 })) as Record<string, unknown>;
  assert.equal(entry.message, text);
  assert.equal(entry.requestId, 'r-1');
  assert.equal(entry.durationMs, 3);
});
