/**
 * What Chrysalis changes in Bull Board's page (its index HTML has no option for either): the Google Fonts
 * stylesheet it links goes (the board's CSP blocks it, so each page logged an error; the CSS falls back to
 * local sans-serif and monospace fonts), and a small script of ours names its icon-only buttons.
 */

/** Served under the board's base path, so the board's CSP (script-src 'self') lets it run. */
export const iconLabelsScriptPath = '/chrysalis-icon-labels.js';

/**
 * Gives each icon-only button an aria-label from its lucide icon (Bull Board shows the name only as a hover
 * tooltip, which a screen reader never reaches). Rerun on every DOM change: the board re-renders as it
 * polls, and a button may swap its icon (maximize ↔ minimize). Plain browser JavaScript, served as is.
 */
export const iconLabelsScript = `(() => {
  const labels = {
    maximize: 'Full screen', minimize: 'Leave full screen', settings: 'Settings', 'circle-user': 'Account menu',
    'ellipsis-vertical': 'More actions', 'refresh-cw': 'Retry', files: 'Duplicate', pencil: 'Update data',
    'trash-2': 'Clean', copy: 'Copy', 'circle-play': 'Promote', x: 'Close', 'panel-left': 'Toggle sidebar',
  };
  const label = (button) => {
    const mine = button.hasAttribute('data-chrysalis-label');
    if (!mine && (button.hasAttribute('aria-label') || button.hasAttribute('aria-labelledby') || button.textContent.trim())) return;
    const icon = button.querySelector('svg[class*="lucide-"]');
    if (!icon) return;
    const names = [...icon.classList].filter((name) => name.startsWith('lucide-')).map((name) => name.slice('lucide-'.length));
    const name = names.find((each) => labels[each]) || names[names.length - 1];
    button.setAttribute('aria-label', labels[name] || name.replace(/-/g, ' '));
    button.setAttribute('data-chrysalis-label', '');
  };
  const labelAll = () => document.querySelectorAll('button').forEach(label);
  new MutationObserver(labelAll).observe(document.body, { childList: true, subtree: true });
  labelAll();
})();
`;

const googleFontsLink = /<link\b[^>]*\bhref="https:\/\/fonts\.(?:googleapis|gstatic)\.com[^>]*>\s*/g;

/** Bull Board's index HTML without its Google Fonts links and with the icon-labels script. */
export function rewriteBoardPage(html: string): string {
  return html.replace(googleFontsLink, '').replace('</body>', `<script defer src="${iconLabelsScriptPath.slice(1)}"></script></body>`);
}
