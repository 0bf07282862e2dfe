// A small live chart: an SVG line with a soft area under it. The geometry is sparkline-path.ts;
// the SVG scales to its box (viewBox) so CSS sets the size.
import { sparklinePaths } from './sparkline-path.ts';

interface SparklineProps {
  values: readonly (number | null)[];
  capacity: number;
  min: number;
  max: number;
  /** Says what the chart shows, for screen readers (the numbers are beside it as text). */
  label: string;
  tone?: 'cpu' | 'memory';
}

const WIDTH = 240;
const HEIGHT = 56;

export function Sparkline({ values, capacity, min, max, label, tone = 'cpu' }: SparklineProps) {
  const { line, area } = sparklinePaths(values, {
    width: WIDTH,
    height: HEIGHT,
    capacity,
    min,
    max,
  });
  return (
    <svg
      className={`sparkline sparkline-${tone}`}
      viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
      preserveAspectRatio="none"
      role="img"
      aria-label={label}
    >
      <line className="sparkline-grid" x1="0" x2={WIDTH} y1={HEIGHT / 2} y2={HEIGHT / 2} />
      {area && <path className="sparkline-area" d={area} />}
      {line && <path className="sparkline-line" d={line} vectorEffect="non-scaling-stroke" />}
    </svg>
  );
}
