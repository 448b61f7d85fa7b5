// What the cluster access and the deploy stages log, for a person at a terminal: warnings
// and errors on stderr as plain lines (stdout carries the command's answer), redacted as
// the function's own logs are. INFO lines (which endpoint a lookup took) are left out.
import { redactText, type Logger } from '../core/log.ts';
import type { Io } from './command.ts';

export function stderrLogger(io: Io): Logger {
  return (severity, message) => {
    if (severity === 'WARNING' || severity === 'ERROR') io.stderr(`${severity.toLowerCase()}: ${redactText(message)}\n`);
  };
}
