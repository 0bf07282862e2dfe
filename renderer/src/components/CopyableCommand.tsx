// A command the user is meant to paste in a terminal, with a "Copy" button. The button says
// "Copied" for a moment; when the page may not write to the clipboard it selects the command
// instead, so Ctrl+C copies it.
import { useEffect, useRef, useState } from 'react';

const FEEDBACK_MS = 1500;

type Outcome = 'idle' | 'copied' | 'selected';

export function CopyableCommand({ command, testId }: { command: string; testId?: string }) {
  const code = useRef<HTMLElement>(null);
  const [outcome, setOutcome] = useState<Outcome>('idle');
  useEffect(() => {
    if (outcome === 'idle') return;
    const timer = setTimeout(() => setOutcome('idle'), FEEDBACK_MS);
    return () => clearTimeout(timer);
  }, [outcome]);

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(command);
      setOutcome('copied');
    } catch {
      if (code.current) window.getSelection()?.selectAllChildren(code.current);
      setOutcome('selected');
    }
  };

  return (
    <span className="command">
      <code ref={code} data-testid={testId}>
        {command}
      </code>
      <button
        type="button"
        className="button button-small"
        aria-label={`Copy ${command}`}
        onClick={() => void copy()}
      >
        {outcome === 'copied' ? 'Copied' : outcome === 'selected' ? 'Press Ctrl+C' : 'Copy'}
      </button>
    </span>
  );
}
