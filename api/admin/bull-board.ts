import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import type { RequestHandler } from 'express';
import { iconLabelsScript, iconLabelsScriptPath, rewriteBoardPage } from './bull-board-page.js';

export interface BullBoardOptions {
  /** Where the board is mounted. Default `/admin/queues`. */
  basePath?: string;
  /** Where the board's "Log out" menu link points. Default `/admin/logout`. */
  logoutPath?: string;
}

/**
 * Bull Board's UI renders from inline JSON and its own bundles (its CDN font link is taken out of the page,
 * bull-board-page.ts); this policy keeps it to this origin and forbids framing.
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
    if (req.method === 'GET' && req.path === iconLabelsScriptPath) {
      res.type('text/javascript').send(iconLabelsScript);
      return;
    }
    // The board renders its one HTML page with res.render; every other answer (JSON, static files) is untouched.
    const render = res.render.bind(res);
    res.render = ((view: string, options?: object) =>
      render(view, options ?? {}, (error: Error | null, html?: string) =>
        error ? next(error) : res.send(rewriteBoardPage(html ?? '')),
      )) as typeof res.render;
    board(req, res, next);
  };
}
