// The geometry of a sparkline: samples to SVG path data. Kept apart from the component so the
// maths is tested without a DOM. Samples fill from the right, one slot per sample, so a chart
// with few samples grows leftwards like a live monitor; a null (no value yet) breaks the line.
export interface SparklineBox {
  width: number;
  height: number;
  /** How many samples the full width holds. */
  capacity: number;
  min: number;
  max: number;
}

export interface SparklinePaths {
  /** The line through the samples ("" when there is no point). */
  line: string;
  /** The same line closed down to the baseline, for a filled area ("" when no segment). */
  area: string;
}

const round = (n: number) => Math.round(n * 100) / 100;

export function sparklinePaths(
  values: readonly (number | null)[],
  box: SparklineBox,
): SparklinePaths {
  const { width, height, min, max } = box;
  const capacity = Math.max(2, box.capacity);
  const shown = values.slice(-capacity);
  const step = width / (capacity - 1);
  const span = max - min;
  const x = (i: number) => round(width - (shown.length - 1 - i) * step);
  const y = (v: number) => {
    const share = span > 0 ? (Math.min(max, Math.max(min, v)) - min) / span : 0.5;
    return round(height - share * height);
  };

  const runs: { x: number; y: number }[][] = [];
  let run: { x: number; y: number }[] = [];
  shown.forEach((value, i) => {
    if (value === null || !Number.isFinite(value)) {
      if (run.length > 0) runs.push(run);
      run = [];
      return;
    }
    run.push({ x: x(i), y: y(value) });
  });
  if (run.length > 0) runs.push(run);

  const line = runs
    .map((points) => points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x} ${p.y}`).join(' '))
    .join(' ');
  const area = runs
    .filter((points) => points.length > 1)
    .map((points) => {
      const first = points[0]!;
      const last = points[points.length - 1]!;
      const top = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x} ${p.y}`).join(' ');
      return `${top} L${last.x} ${height} L${first.x} ${height} Z`;
    })
    .join(' ');
  return { line, area };
}
