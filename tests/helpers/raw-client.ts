import http from 'node:http';

export interface RawRequest {
  method: string;
  /** Sent byte for byte: no normalisation of `..`, no re-encoding (unlike fetch and URL). */
  path: string;
  /** An array sends the header once per value. */
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/**
 * A client over node:http for requests fetch will not send: bodies on GET, raw paths, latin-1 header
 * bytes, repeated headers. Keeps connections alive. Rejects when no answer has started within `timeoutMs`
 * (a hang is a failure too) and stops reading an answer after 1 MiB (GET /openapi.json is ~260 KB).
 */
export function rawClient(baseUrl: string, timeoutMs = 15_000) {
  const { hostname, port } = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

  function send(request: RawRequest): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = { ...request.headers };
      if (request.body !== undefined) headers['content-length'] = Buffer.byteLength(request.body);
      const req = http.request({ host: hostname, port, method: request.method, path: request.path, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= 1024 * 1024) chunks.push(chunk);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      });
      const timer = setTimeout(() => {
        req.destroy(new Error(`no complete answer within ${timeoutMs} ms`));
      }, timeoutMs);
      req.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      req.end(request.body);
    });
  }

  return { send, close: () => agent.destroy() };
}
