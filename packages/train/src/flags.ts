/**
 * Command-line flags: `--name value`, `--name=value` and boolean `--name`, in camelCase or
 * kebab-case (`--eval-every` = `--evalEvery`), typed by a defaults object. Anything unknown or
 * malformed is an error that lists the valid flags.
 */
export type FlagValue = string | number | boolean;

const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export class FlagError extends Error {}

/** Parses `argv` against `defaults` (a value's type gives the flag's type); returns a full object. */
export function parseFlags<T extends Record<string, FlagValue | undefined>>(
  argv: readonly string[],
  defaults: T,
  command: string,
): T {
  const out: Record<string, FlagValue | undefined> = { ...defaults };
  const list = () =>
    Object.entries(defaults)
      .map(([k, v]) => `--${kebab(k)}${v === undefined ? '' : ` (${JSON.stringify(v)})`}`)
      .join(', ');
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-zA-Z][\w-]*)(?:=(.*))?$/.exec(argv[i]);
    if (!m)
      throw new FlagError(
        `aes ${command}: unexpected argument '${argv[i]}'; flags look like --name value. Valid flags: ${list()}`,
      );
    const key = camel(m[1]);
    if (!(key in defaults)) throw new FlagError(`aes ${command}: unknown flag --${m[1]}. Valid flags: ${list()}`);
    const kind = typeof defaults[key];
    let raw = m[2];
    if (raw === undefined) {
      if (kind === 'boolean' && (argv[i + 1] === undefined || argv[i + 1].startsWith('--'))) raw = 'true';
      else raw = argv[++i];
    }
    if (raw === undefined) throw new FlagError(`aes ${command}: --${m[1]} needs a value`);
    if (kind === 'number') {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v))
        throw new FlagError(`aes ${command}: --${m[1]} expects a number, got '${raw}'`);
      out[key] = v;
    } else if (kind === 'boolean') {
      if (raw !== 'true' && raw !== 'false')
        throw new FlagError(`aes ${command}: --${m[1]} expects true or false, got '${raw}'`);
      out[key] = raw === 'true';
    } else out[key] = raw;
  }
  return out as T;
}

/** The flags present in `argv`, by camelCase name (to tell a flag given at its default from one not given). */
export function givenFlags(argv: readonly string[]): Set<string> {
  return new Set(argv.flatMap((a) => /^--([a-zA-Z][\w-]*)/.exec(a)?.[1] ?? []).map(camel));
}
