import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { metricsRegistry } from '../../lib/metrics/catalog.js';

const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: Array<{ expr: string; datasource?: { uid: string } }>;
}

const dashboard = JSON.parse(read('ops/grafana/dashboards/chrysalis.json')) as { uid: string; title: string; panels: Panel[] };
const datasources = parse(read('ops/grafana/provisioning/datasources/prometheus.yml'));
const providers = parse(read('ops/grafana/provisioning/dashboards/chrysalis.yml'));
const prometheus = parse(read('ops/prometheus/prometheus.yml'));

/** Every series name the code exports: histograms as their _bucket, _sum and _count series. */
function exportedSeriesNames(): Set<string> {
  const names = new Set<string>();
  for (const metric of metricsRegistry.getMetricsAsArray()) {
    const { name, type } = metric as unknown as { name: string; type: string };
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    else names.add(name);
  }
  return names;
}

const queried = dashboard.panels.flatMap((panel) => panel.targets ?? []).map((target) => target.expr);

describe('ops files', () => {
  it('the Grafana dashboard is valid JSON whose queries only name series the code exports', () => {
    expect(dashboard.uid).toBe('chrysalis-overview');
    expect(queried.length).toBeGreaterThan(20);
    const exported = exportedSeriesNames();
    const used = new Set(queried.flatMap((expr) => expr.match(/\b(?:chrysalis|process|nodejs)_[a-z0-9_]+\b/g) ?? []));
    expect(used.size).toBeGreaterThan(10);
    for (const name of used) expect(exported, `${name} is queried by the dashboard but no code defines it`).toContain(name);
  });

  it('the dashboard covers throughput, latency, queue depth, failures, pool utilisation and billing', () => {
    for (const series of [
      'chrysalis_http_requests_total',
      'chrysalis_jobs_total',
      'chrysalis_http_request_duration_seconds_bucket',
      'chrysalis_job_duration_seconds_bucket',
      'chrysalis_queue_jobs',
      'chrysalis_pool_utilization_ratio',
      'chrysalis_webhook_deliveries_total',
      'chrysalis_cache_lookups_total',
      'chrysalis_billing_charged_usd_cents_total',
    ]) {
      expect(
        queried.some((expr) => expr.includes(series)),
        series,
      ).toBe(true);
    }
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('every dashboard query uses the provisioned Prometheus datasource', () => {
    expect(datasources.apiVersion).toBe(1);
    const [source] = datasources.datasources;
    expect(source).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090', uid: 'chrysalis-prometheus' });
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(panel.datasource?.uid, panel.title).toBe(source.uid);
      for (const target of panel.targets ?? []) expect(target.datasource?.uid, panel.title).toBe(source.uid);
    }
  });

  it('the dashboard provider loads the folder docker compose mounts the dashboards into', () => {
    expect(providers.apiVersion).toBe(1);
    const [provider] = providers.providers;
    expect(provider).toMatchObject({ type: 'file' });
    const compose = parse(read('docker-compose.yml'));
    const mounts: string[] = compose.services.grafana.volumes;
    expect(mounts.some((mount) => mount.startsWith('./ops/grafana/dashboards:' + provider.options.path))).toBe(true);
    expect(mounts.some((mount) => mount.startsWith('./ops/grafana/provisioning:/etc/grafana/provisioning'))).toBe(true);
  });

  it('the Prometheus config is valid YAML scraping the API and the workers with the metrics token', () => {
    const jobs = prometheus.scrape_configs as Array<{ job_name: string; metrics_path: string; authorization?: { type: string } }>;
    expect(jobs.find((job) => job.job_name === 'chrysalis-api')?.metrics_path).toBe('/api/v1/metrics');
    const worker = jobs.find((job) => job.job_name === 'chrysalis-worker') as unknown as {
      metrics_path: string;
      dns_sd_configs: Array<{ port: number }>;
    };
    expect(worker.metrics_path).toBe('/metrics');
    expect(worker.dns_sd_configs[0]?.port).toBe(9464);
    for (const job of jobs) expect(job.authorization?.type, job.job_name).toBe('Bearer');
  });
});
