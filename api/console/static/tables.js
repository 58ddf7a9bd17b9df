/* global MutationObserver */
// The phone layout of a table (`<table class="stack">`): each row a card, each cell labelled with its column's heading.

function labelCells(tbody) {
  const labels = [...tbody.closest('table').querySelectorAll('thead th')].map((th) => th.textContent.trim());
  for (const tr of tbody.rows)
    for (const [i, td] of [...tr.cells].entries()) if (td.colSpan === 1 && !td.dataset.label) td.dataset.label = labels[i] ?? '';
}

/** Keeps every cell of `tbody` labelled (data-label, which console.css shows beside it on a phone), as rows come and go. */
export function stackOnPhones(tbody) {
  labelCells(tbody);
  new MutationObserver(() => labelCells(tbody)).observe(tbody, { childList: true });
}
