// The one output format of every bench: a JSON line per figure,
// {"bench", "unit", "berth", "peer", "ratio"}, with the peer measured in the same run.
export interface BenchLine {
  bench: string;
  unit: string;
  berth: number;
  peer: number | null;
  ratio: number | null;
}

export function emit(line: BenchLine): void {
  const round = (v: number | null) => (v === null ? null : Number(v.toPrecision(4)));
  console.log(
    JSON.stringify({
      ...line,
      berth: round(line.berth),
      peer: round(line.peer),
      ratio: round(line.ratio),
    }),
  );
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
