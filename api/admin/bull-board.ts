import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import type { RequestHandler } from 'express';

export interface BullBoardOptions {
  /** Where the board is mounted. Default `/admin/queues`. */
  basePath?: string;
  /** Where the board's "Log out" menu link points. Default `/admin/logout`. */
  logoutPath?: string;
}

/**
 * Bull Board's UI renders from inline JSON and its own bundles, and would fetch a web font from a CDN;
 * this policy keeps it to this origin (the font falls back to a local one) and forbids framing.
 * It applies to the board only: the rest of the API keeps whatever policy the app sets.
 */
export const bullBoardCsp = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'self'",
  "form-action 'self'",
].join('; ');

/**
 * The Bull Board app for these queues (every job-type queue plus any internal ones, e.g. webhook
 * deliveries: pass them all). Mount it at `basePath`, behind `requireAdminSession`.
 */
export function bullBoardApp(queues: Iterable<Queue>, options: BullBoardOptions = {}): RequestHandler {
  const basePath = options.basePath ?? '/admin/queues';
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(basePath);
  createBullBoard({
    queues: [...queues].map((queue) => new BullMQAdapter(queue)),
    serverAdapter,
    options: {
      uiConfig: {
        boardTitle: 'Chrysalis queues',
        hideDocsLink: true,
        miscLinks: [{ text: 'Log out', url: options.logoutPath ?? '/admin/logout' }],
      },
    },
  });
  const board = serverAdapter.getRouter() as RequestHandler;
  return (req, res, next) => {
    res.setHeader('Content-Security-Policy', bullBoardCsp);
    res.setHeader('Referrer-Policy', 'same-origin');
    board(req, res, next);
  };
}
