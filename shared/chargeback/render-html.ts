import type { ChargebackReport } from './model';

const escapeHtml = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );

function barChart(title: string, data: Array<{ label: string; value: number; text: string }>): string {
  const max = Math.max(...data.map((d) => d.value), 0.01);
  const rowHeight = 26;
  const width = 640;
  const labelWidth = 200;
  const bars = data
    .map((d, i) => {
      const w = Math.round(((width - labelWidth - 90) * d.value) / max);
      const y = i * rowHeight;
      return `<text x="${labelWidth - 8}" y="${y + 17}" text-anchor="end">${escapeHtml(d.label)}</text><rect x="${labelWidth}" y="${y + 4}" width="${w}" height="18" fill="#2f6fb0"/><text x="${labelWidth + w + 6}" y="${y + 17}">${escapeHtml(d.text)}</text>`;
    })
    .join('');
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg role="img" aria-label="${escapeHtml(title)}" width="${width}" height="${Math.max(data.length, 1) * rowHeight + 8}" font-family="sans-serif" font-size="13">${bars}</svg></figure>`;
}

function trendChart(title: string, data: Array<{ label: string; value: number; text: string }>): string {
  const width = 640;
  const height = 220;
  const pad = 40;
  const max = Math.max(...data.map((d) => d.value), 0.01);
  const step = data.length > 1 ? (width - 2 * pad) / (data.length - 1) : 0;
  const points = data.map(
    (d, i) => [pad + i * step, height - pad - ((height - 2 * pad) * d.value) / max] as const,
  );
  const line = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
  const marks = data
    .map((d, i) => {
      const [x, y] = points[i] as readonly [number, number];
      return `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3" fill="#2f6fb0"><title>${escapeHtml(`${d.label}: ${d.text}`)}</title></circle><text x="${x.toFixed(1)}" y="${height - pad + 16}" text-anchor="middle" font-size="10">${escapeHtml(d.label.slice(5))}</text>`;
    })
    .join('');
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg role="img" aria-label="${escapeHtml(title)}" width="${width}" height="${height}" font-family="sans-serif" font-size="12"><line x1="${pad}" y1="${height - pad}" x2="${width - pad}" y2="${height - pad}" stroke="#999"/><polyline points="${line}" fill="none" stroke="#2f6fb0" stroke-width="2"/>${marks}</svg></figure>`;
}

/** A self-contained page (no scripts, no external resources): totals, and charts as inline SVG. */
export function renderHtml(report: ChargebackReport): string {
  const c = report.currency;
  const amount = (v: string): string => `${c} ${v}`;
  const rows = report.departments
    .map(
      (d) =>
        `<tr><td>${escapeHtml(d.name)}</td><td>${escapeHtml(d.department)}</td><td>${escapeHtml(d.costCenter ?? '')}</td><td class="n">${d.usage}</td><td class="n">${d.shared}</td><td class="n">${d.markup}</td><td class="n"><b>${d.total}</b></td></tr>`,
    )
    .join('\n');
  const title = `AI chargeback ${report.period.kind === 'monthly' ? 'month' : 'day'} ${report.period.id}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}.n{text-align:right;font-variant-numeric:tabular-nums}figure{margin:1.5rem 0}figcaption{font-weight:600;margin-bottom:.5rem}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p>Total <b>${escapeHtml(amount(report.total))}</b> · data through ${escapeHtml(report.dataThrough)} · period ${escapeHtml(report.period.start)} to ${escapeHtml(report.period.end)}</p>
<table>
<thead><tr><th>Department</th><th>Id</th><th>Cost center</th><th class="n">Usage</th><th class="n">Shared</th><th class="n">Markup</th><th class="n">Total (${escapeHtml(c)})</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
${barChart(
  'Cost per department',
  report.departments.map((d) => ({ label: d.name, value: Number(d.total), text: amount(d.total) })),
)}
${barChart(
  'Usage cost per model',
  report.byModel.map((m) => ({ label: m.model, value: Number(m.cost), text: amount(m.cost) })),
)}
${trendChart(
  'Usage cost per day',
  report.byDay.map((d) => ({ label: d.day, value: Number(d.cost), text: amount(d.cost) })),
)}
</body>
</html>
`;
}
