/**
 * Report sections: how a method puts its own charts on the report pages (SDD's HQS curves,
 * SDEdit's strength line) without a branch in the page builder (src/reports/build.ts).
 *
 * Contract
 *   - A section is a plain object { id, order, figures(view) }, usually one file beside the method
 *     (src/methods/sdd_report.ts, baselines/sdedit_report.ts), listed in the method's
 *     `reportSections` (src/methods/types.ts): adding one is that file plus one line in the list.
 *     Sections every page has (bars, time, training) use the same shape and are listed in
 *     src/reports/sections/index.ts.
 *   - A page runs the sections of every method that has a group on it (each section once, however
 *     many methods list it) and the page's own ones, sorted by `order` (ties: the order listed).
 *     The built-in orders: 10 metric bars, 20 SDD's HQS, 30 SDEdit's trade-off, 40 total time,
 *     50 training curves.
 *   - `figures` reads only the view (and, for files a run wrote, `run.dir`); it returns no figure
 *     when it has nothing to show. It must be deterministic: pages are compared across versions.
 *   - Each figure's `id` names its files (charts/<id>.vl.json, .svg, .png) and its element id: it
 *     must be unique on the page. The spec must validate against the Vega-Lite schema (checked when
 *     the page is built: an invalid spec fails the report, naming the chart).
 *   - Methods sit below the reports layer: a section builds its spec from plain data here and
 *     src/util/charts.ts (the pages' chart style), never by importing src/reports.
 */
import type { TopLevelSpec } from 'vega-lite';

/** A finished run as report sections see it. */
export interface ReportRun {
  readonly id: string;
  /** The run's folder in the store (artifacts/ holds its files). */
  readonly dir: string;
  readonly prompt: string;
  readonly seed: number;
  /** Its result's metrics, with the method's `reportValues` added. */
  readonly values: Readonly<Record<string, unknown>>;
}

/** A table row of the page: the runs that share everything but prompt and seed. */
export interface ReportGroup {
  readonly label: string;
  readonly method: string;
  /** method.params of the group's first run with a config, or null. */
  readonly params: Readonly<Record<string, unknown>> | null;
  readonly finished: readonly ReportRun[];
}

/** A group's method-level value of a metric: the mean over prompts and its interval. */
export interface GroupStat {
  readonly mean: number;
  readonly lo: number | null;
  readonly hi: number | null;
  readonly prompts: number;
}

export interface ReportView {
  readonly groups: readonly ReportGroup[];
  /** Every finished run, group by group. */
  readonly runs: readonly ReportRun[];
  /** The metrics some finished run has, in the metric table's order (the page's columns). */
  readonly metrics: readonly string[];
  /** The group's method-level statistic (as in the results table), or null without values. */
  stat(group: ReportGroup, metric: string): GroupStat | null;
}

export interface ReportFigure {
  id: string;
  title: string;
  spec: TopLevelSpec;
}

export interface ReportSection {
  /** Names the section (distinct sections have distinct ids). */
  readonly id: string;
  /** Position among the page's figures (see the built-in orders above). */
  readonly order: number;
  figures(view: ReportView): ReportFigure[];
}
