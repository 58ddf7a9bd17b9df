import { STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { problemBody } from './problems.js';

/**
 * Requests Node's HTTP parser refuses before Express sees them (a request line or headers past 16 KiB,
 * a malformed request line) are answered with a problem too. Left to Node, they got a bare 431 or 400
 * with no body, the one kind of error that was not RFC 9457.
 */
export function answerClientErrorsWithProblems(server: Server): void {
  server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => {
    // The client is gone, is too slow to finish its request, or an answer is already on its way: nothing to say.
    if (!error.code?.startsWith('HPE_') || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, body] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, problemBody('headers-too-large', 'the request line and headers may take at most 16 KiB together')]
        : [400, problemBody('validation', 'the request is not well-formed HTTP')];
    const text = JSON.stringify(body);
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
  });
}
