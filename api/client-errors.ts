import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { problemBody } from './problems.js';

/**
 * Requests Node's HTTP parser refuses before Express sees them (a request line or headers past 16 KiB,
 * a malformed request line) are answered with a problem too. Left to Node, they got a bare 431 or 400
 * with no body, the one kind of error that was not RFC 9457. So is a request that did not arrive whole
 * within the server's request or headers timeout (api/http-server.ts): 408, then the connection closes.
 */
export function answerClientErrorsWithProblems(server: Server): void {
  // Each connection's latest answer, so that a timed-out request already being answered gets no second one.
  const answers = new WeakMap<Duplex, ServerResponse>();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => answers.set(req.socket, res));
  server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => {
    const timedOut = error.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    // The latest answer is this request's while its request is still arriving (an earlier one's request was complete).
    const answer = answers.get(socket);
    const answering = answer !== undefined && !answer.req.complete && answer.headersSent;
    // The client is gone, an answer is already on its way, or some other failure: nothing to say.
    if ((!error.code?.startsWith('HPE_') && !timedOut) || !socket.writable || answering) {
      socket.destroy();
      return;
    }
    const [status, body] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, problemBody('headers-too-large', 'the request line and headers may take at most 16 KiB together')]
        : timedOut
          ? [408, problemBody('request-timeout', 'the request did not arrive whole in time: its headers or its body stalled')]
          : [400, problemBody('validation', 'the request is not well-formed HTTP')];
    const text = JSON.stringify(body);
    // Closed once the answer is written: the server's sockets allow half-open, so `end` alone would leave a
    // stalled client's side open.
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
      () => socket.destroy(),
    );
  });
}
