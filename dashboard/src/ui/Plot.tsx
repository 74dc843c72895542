/**
 * A time-series plot (uPlot: a canvas, ~20 kB gzipped). Screen readers get the figure's caption
 * and a one-line summary of each series (total and peak); the canvas itself is an image.
 */
import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'

export interface PlotSeries {
  label: string
  /** CSS colour of the line. */
  color: string
  values: number[]
  /** Fill under the line. */
  fill?: boolean
}

interface PlotProps {
  /** The caption, e.g. "Requests per minute". */
  title: string
  /** Bucket starts, epoch ms. */
  times: number[]
  series: PlotSeries[]
  /** How values are written on the axis and in the summary (count, usd…). */
  format: (value: number) => string
  height?: number
}

function summary(series: PlotSeries[], format: (v: number) => string): string {
  return series
    .map((s) => {
      const total = s.values.reduce((a, v) => a + v, 0)
      const peak = s.values.reduce((a, v) => Math.max(a, v), 0)
      return `${s.label}: ${format(total)} in all, at most ${format(peak)} in one interval`
    })
    .join('; ')
}

export function Plot({ title, times, series, format, height = 180 }: PlotProps) {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  const shape = series.map((s) => `${s.label}:${s.color}`).join('|')

  useEffect(() => {
    const el = box.current
    if (el === null) return
    const options: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      ms: 1,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.15)' }, ticks: { show: false } },
        {
          stroke: 'currentColor',
          size: 56,
          grid: { stroke: 'rgba(128,128,128,0.15)' },
          ticks: { show: false },
          values: (_u, values) => values.map((v) => format(v)),
        },
      ],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          fill: s.fill ? `${s.color}22` : undefined,
          points: { show: false },
        })),
      ],
    }
    const chart = new uPlot(options, [times, ...series.map((s) => s.values)], el)
    plot.current = chart
    const observer = new ResizeObserver(() => {
      const width = Math.max(200, el.clientWidth)
      if (width !== chart.width) chart.setSize({ width, height })
    })
    observer.observe(el)
    return () => {
      observer.disconnect()
      chart.destroy()
      plot.current = null
    }
  }, [shape, height])

  useEffect(() => {
    plot.current?.setData([times, ...series.map((s) => s.values)])
  })

  const text = summary(series, format)
  return (
    <figure class="plot">
      <figcaption>
        <span class="plot-title">{title}</span>
        <span class="legend">
          {series.map((s) => (
            <span key={s.label} class="legend-item">
              <span class="swatch" style={{ background: s.color }} />
              {s.label} {format(s.values.reduce((a, v) => a + v, 0))}
            </span>
          ))}
        </span>
      </figcaption>
      <div class="plot-canvas" ref={box} role="img" aria-label={`${title}. ${text}`} />
    </figure>
  )
}
