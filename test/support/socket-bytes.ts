// Loaded with `--import` into a server process: when a connection it accepted closes,
// appends "<client port> <bytes the server read from it>" to the file SOCKET_BYTES_FILE
// names, so a test can tell how much of what it sent the server actually read.
import dc from 'node:diagnostics_channel';
import { appendFileSync } from 'node:fs';
import type { Socket } from 'node:net';

const file = process.env.SOCKET_BYTES_FILE;
if (file) {
  dc.subscribe('net.server.socket', (message) => {
    const { socket } = message as { socket: Socket };
    const port = socket.remotePort;
    socket.once('close', () => appendFileSync(file, `${port} ${socket.bytesRead}\n`));
  });
}
