import { randomFillSync } from 'node:crypto';
import { V7Generator } from 'uuidv7';

/**
 * Random 32-bit words for the UUIDv7 generator, drawn from the operating system 1,024 at a time. The uuidv7
 * package's own source refills 8 words through Web Crypto's `getRandomValues` (its argument checks and a
 * call into C++ every third UUID): ~5 µs of every accepted submit. Same entropy (the kernel's CSPRNG).
 */
class BufferedRandom {
  private readonly words = new Uint32Array(1024);
  private cursor = this.words.length;

  nextUint32(): number {
    if (this.cursor === this.words.length) {
      randomFillSync(this.words);
      this.cursor = 0;
    }
    return this.words[this.cursor++]!;
  }
}

/** The process's one generator, as the package's `uuidv7()` keeps one: ids it makes increase within the process. */
const generator = new V7Generator(new BufferedRandom());

/** A UUIDv7 string (`xxxxxxxx-xxxx-7xxx-…`), time-ordered and monotonic within the process, as the uuidv7 package's `uuidv7()`. */
export const uuidv7 = (): string => generator.generate().toString();
