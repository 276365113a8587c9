import type { BenchResult, SubjectInfo } from '../run.js'
import { ms, ratio, whole } from './format.js'

interface Bar {
  label: string
  value: number
  text: string
  color: string
}

interface Group {
  title: string
  bars: Bar[]
}

interface Panel {
  title: string
  /** `ratio`: log scale around 1× (bars grow left when faster, right when slower); `linear`: from 0. */
  scale: 'ratio' | 'linear'
  groups: Group[]
}

const WIDTH = 980
const LABEL_WIDTH = 330
const VALUE_WIDTH = 90
const PLOT_WIDTH = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 20
const ROW = 18
const GROUP_GAP = 26
const TITLE_HEIGHT = 44

/** Colours by library, so one library reads the same in both panels. */
function colorOf(subject: SubjectInfo): string {
  const id = subject.id
  if (id.endsWith('/verrou-250ms')) return '#1f5fbf'
  if (id.endsWith('/verrou-10ms')) return '#5b9be6'
  if (id.endsWith('/verrou-store-alone')) return '#a9c8f0'
  if (id.endsWith('/floor')) return '#8a8a8a'
  if (id.endsWith('/verrou-v0')) return '#e08a1e'
  if (id.endsWith('/redlock')) return '#c0392b'
  return '#2e9e5b'
}

/** Two panels: cycle latency against the floor, and throughput under contention. */
export function renderChart(result: BenchResult): string {
  const stores = [...new Set(result.cycles.map((row) => row.subject.store))]
  const latency: Panel = {
    title: 'Uncontended acquire + release: p50 latency relative to the raw floor (log scale, 1× = floor)',
    scale: 'ratio',
    groups: stores.map((store) => {
      const floor = result.cycles.find((row) => row.subject.store === store && row.subject.role === 'floor')
      const rows = result.cycles.filter((row) => row.subject.store === store && row.subject.role !== 'floor')
      return {
        title: `${store} (floor p50 ${floor ? ms(floor.latency.p50) : '–'} ms)`,
        bars: rows
          .filter((row) => row.error === undefined && floor !== undefined)
          .map((row) => {
            const value = row.latency.p50 / floor!.latency.p50
            return { label: row.subject.label, value, text: ratio(value), color: colorOf(row.subject) }
          }),
      }
    }),
  }
  const contention: Panel = {
    title: `Under contention: acquisitions per second, ${result.plan.contention.workers} workers on one key, ${result.plan.contention.holdMs} ms hold`,
    scale: 'linear',
    groups: [...new Set(result.contention.map((row) => row.subject.store))].map((store) => ({
      title: store,
      bars: result.contention
        .filter((row) => row.subject.store === store && row.error === undefined)
        .map((row) => ({
          label: row.subject.label,
          value: row.acquisitionsPerSecond,
          text: whole(row.acquisitionsPerSecond),
          color: colorOf(row.subject),
        })),
    })),
  }

  const parts: string[] = []
  let y = 0
  for (const panel of [latency, contention]) {
    const { svg, height } = renderPanel(panel, y)
    parts.push(svg)
    y += height + 20
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}" font-family="Helvetica, Arial, sans-serif" font-size="12" role="img" aria-labelledby="title">`,
    `<title id="title">Verrou benchmarks (${result.plan.name} run): ${escapeXml(latency.title)}; ${escapeXml(contention.title)}</title>`,
    `<rect width="${WIDTH}" height="${y}" fill="#ffffff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n')
}

function renderPanel(panel: Panel, top: number): { svg: string; height: number } {
  const values = panel.groups.flatMap((group) => group.bars.map((bar) => bar.value)).filter((v) => Number.isFinite(v) && v > 0)
  const x = scale(panel.scale, values)
  const out: string[] = [`<text x="10" y="${top + 22}" font-size="14" font-weight="bold">${escapeXml(panel.title)}</text>`]
  let y = top + TITLE_HEIGHT
  const plotTop = y
  for (const group of panel.groups) {
    out.push(`<text x="10" y="${y + 12}" font-weight="bold">${escapeXml(group.title)}</text>`)
    y += ROW + 2
    for (const bar of group.bars) {
      const from = panel.scale === 'ratio' ? x(1) : x(0)
      const to = Number.isFinite(bar.value) && bar.value > 0 ? x(bar.value) : from
      const left = Math.min(from, to)
      out.push(`<text x="${LABEL_WIDTH - 8}" y="${y + 12}" text-anchor="end">${escapeXml(bar.label)}</text>`)
      out.push(
        `<rect x="${left.toFixed(1)}" y="${y + 2}" width="${Math.max(Math.abs(to - from), 1).toFixed(1)}" height="${ROW - 5}" fill="${bar.color}"/>`,
      )
      out.push(`<text x="${(Math.max(from, to) + 5).toFixed(1)}" y="${y + 12}">${escapeXml(bar.text)}</text>`)
      y += ROW
    }
    y += GROUP_GAP - ROW
  }
  if (panel.scale === 'ratio') {
    const one = x(1).toFixed(1)
    out.push(`<line x1="${one}" y1="${plotTop}" x2="${one}" y2="${y}" stroke="#333" stroke-width="1"/>`)
    out.push(`<text x="${one}" y="${plotTop - 4}" text-anchor="middle" fill="#333">1× floor</text>`)
  }
  return { svg: `<g>\n${out.join('\n')}\n</g>`, height: y - top }
}

/** Maps a value to an x coordinate in the plot area. */
function scale(kind: Panel['scale'], values: number[]): (value: number) => number {
  if (kind === 'linear') {
    const max = Math.max(1, ...values) * 1.05
    return (value) => LABEL_WIDTH + (value / max) * PLOT_WIDTH
  }
  // Symmetric enough to show both faster and slower than the floor, never narrower than 0.5× to 4×.
  const low = Math.log2(Math.min(0.5, ...values) / 1.1)
  const high = Math.log2(Math.max(4, ...values) * 1.1)
  return (value) => LABEL_WIDTH + ((Math.log2(value) - low) / (high - low)) * PLOT_WIDTH
}

function escapeXml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
}
