// `npm run smoke`: boots the factory image twice and prints the smoke line last.
import { runSmoke, smokeLine } from './smoke.ts';

try {
  const result = await runSmoke();
  console.log(smokeLine(result));
  if (!result.dataKept) process.exit(1);
} catch (error) {
  console.error(`smoke: FAILED: ${(error as Error).message}`);
  process.exit(1);
}
