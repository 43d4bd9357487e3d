/**
 * The report sections of a page: the ones every page has (listed here) and those of each method
 * with a group on the page (Method.reportSections). The contract is in src/methods/report.ts; a
 * section every page should have is one file in this folder plus one line in PAGE_SECTIONS.
 */
import { getMethod } from '../../methods/registry.js';
import type { ReportSection } from '../../methods/report.js';
import { barsSection } from './bars.js';
import { timeSection } from './time.js';
import { trainingSection } from './training.js';

const PAGE_SECTIONS: readonly ReportSection[] = [barsSection, timeSection, trainingSection];

/** The page's sections, each once, by `order` (ties: page sections first, then methods in group order). */
export function pageSections(methods: readonly string[]): ReportSection[] {
  const fromMethods = [...new Set(methods)].flatMap((m) => getMethod(m).reportSections ?? []);
  const sections = [...new Set([...PAGE_SECTIONS, ...fromMethods])];
  return sections.sort((a, b) => a.order - b.order);
}
