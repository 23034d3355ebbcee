/**
 * Shell completion scripts for both CLIs (`lanekeeper completion bash|zsh`, `lanekeeper-agent completion
 * bash|zsh`), generated from the commander program itself (its commands, subcommands, options and argument
 * choices), so a new command or option completes without anyone maintaining a list.
 *
 * `shared` does not depend on commander: {@link CompletionCommand} is the structural part of commander's
 * `Command` that the generator reads, and a `Command` is passed as is.
 */

/** The part of a commander `Option` the generator reads. */
export interface CompletionOption {
  readonly long?: string | undefined;
  readonly short?: string | undefined;
  readonly description: string;
  readonly hidden?: boolean;
  /** The option takes a value (`<x>` or `[x]`), so the next word is not a command or an option. */
  readonly required?: boolean;
  readonly optional?: boolean;
  readonly argChoices?: readonly string[] | undefined;
}

/** The part of a commander `Argument` the generator reads. */
export interface CompletionArgument {
  readonly argChoices?: readonly string[] | undefined;
}

/** The part of a commander `Command` the generator reads. */
export interface CompletionCommand {
  name(): string;
  description(): string;
  readonly commands: readonly CompletionCommand[];
  readonly options: readonly CompletionOption[];
  readonly registeredArguments?: readonly CompletionArgument[];
}

/** One command path (`lanekeeper lanes drain`) with what may follow it. */
interface CompletionNode {
  readonly path: string;
  readonly subcommands: readonly { readonly name: string; readonly description: string }[];
  readonly options: readonly { readonly flag: string; readonly description: string; readonly takesValue: boolean; readonly choices: readonly string[] }[];
  /** Choices of the first argument, when it has a fixed set (`completion <bash|zsh>`). */
  readonly argChoices: readonly string[];
}

const SAFE_WORD = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Words that end up in the script unquoted must be plain: a command or option name never needs quoting. */
function safeWord(w: string): string {
  if (!SAFE_WORD.test(w)) throw new Error(`completion: refusing to put ${JSON.stringify(w)} in a shell script`);
  return w;
}

function safeFlag(f: string): string {
  if (!/^--?[A-Za-z0-9][A-Za-z0-9-]*$/.test(f)) throw new Error(`completion: refusing to put ${JSON.stringify(f)} in a shell script`);
  return f;
}

/** Every command path of the program, depth first; commander's implicit `help` command and `--help` included. */
function nodes(cmd: CompletionCommand, prefix = ""): CompletionNode[] {
  const path = prefix === "" ? safeWord(cmd.name()) : `${prefix} ${safeWord(cmd.name())}`;
  const subcommands = cmd.commands.map((c) => ({ name: safeWord(c.name()), description: c.description() }));
  const options: CompletionNode["options"][number][] = [];
  for (const o of cmd.options) {
    if (o.hidden === true) continue;
    const takesValue = o.required === true || o.optional === true;
    const choices = (o.argChoices ?? []).map(safeWord);
    for (const f of [o.long, o.short]) if (f !== undefined) options.push({ flag: safeFlag(f), description: o.description, takesValue, choices });
  }
  if (!options.some((o) => o.flag === "--help")) options.push({ flag: "--help", description: "display help for command", takesValue: false, choices: [] });
  const argChoices = (cmd.registeredArguments?.[0]?.argChoices ?? []).map(safeWord);
  return [{ path, subcommands, options, argChoices }, ...cmd.commands.flatMap((c) => nodes(c, path))];
}

/** A shell function name for the program: `lanekeeper-agent` → `_lanekeeper_agent`. */
function functionName(program: string): string {
  return `_${program.replace(/[^A-Za-z0-9]/g, "_")}`;
}

/** The `case` that walks the words typed so far down the command tree. */
function descendCases(all: readonly CompletionNode[], indent: string): string {
  const lines: string[] = [];
  for (const n of all) for (const s of n.subcommands) lines.push(`${indent}"${n.path}:${s.name}") cmd="${n.path} ${s.name}" ;;`);
  return lines.join("\n");
}

/**
 * A bash completion script for the program: `source <(lanekeeper completion bash)`, or save it as
 * `/etc/bash_completion.d/lanekeeper`. Completes subcommands, then options (on a `-`), the choices of an option
 * or argument that has a fixed set, and falls back to file names (an option's value, a bundle file, ...).
 */
export function bashCompletion(program: CompletionCommand): string {
  const all = nodes(program);
  const root = all[0]!.path;
  const fn = functionName(root);
  const words = all
    .map((n) => {
      const subs = n.subcommands.map((s) => s.name).join(" ");
      const opts = n.options.map((o) => o.flag).join(" ");
      const valued = n.options.filter((o) => o.takesValue).map((o) => o.flag).join(" ");
      const choices = n.options
        .filter((o) => o.choices.length > 0)
        .map((o) => `      "${o.flag}") COMPREPLY=( $(compgen -W "${o.choices.join(" ")}" -- "$cur") ); return 0 ;;`)
        .join("\n");
      return [
        `    "${n.path}")`,
        `      subs="${subs}"; opts="${opts}"; valued=" ${valued} "; args="${n.argChoices.join(" ")}"`,
        choices === "" ? "" : `      case "$prev" in\n${choices}\n      esac`,
        "      ;;",
      ]
        .filter((l) => l !== "")
        .join("\n");
    })
    .join("\n");
  return `# bash completion for ${root}: generated by \`${root} completion bash\` from the program's commands; do not edit.
# Use: source <(${root} completion bash), or save it as /etc/bash_completion.d/${root}
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" cmd="${root}" w i subs="" opts="" valued=" " args=""
  (( COMP_CWORD > 0 )) && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  for (( i = 1; i < COMP_CWORD; i++ )); do
    w="\${COMP_WORDS[i]}"
    case "$cmd:$w" in
${descendCases(all, "      ")}
    esac
  done
  case "$cmd" in
${words}
  esac
  # The word after an option that takes a value is that value: leave it to file-name completion.
  if [[ "$prev" == -* && "$valued" == *" $prev "* ]]; then COMPREPLY=(); return 0; fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
  elif [[ -n "$subs" ]]; then
    COMPREPLY=( $(compgen -W "$subs" -- "$cur") )
  elif [[ -n "$args" ]]; then
    COMPREPLY=( $(compgen -W "$args" -- "$cur") )
  else
    COMPREPLY=()
  fi
  return 0
}
complete -o default -F ${fn} ${root}
`;
}

/** A zsh `_describe` entry: `name:description`, single-quoted. */
function describeEntry(name: string, description: string): string {
  const text = `${name.replace(/:/g, "\\:")}:${description.replace(/\s+/g, " ")}`;
  return `'${text.replace(/'/g, "'\\''")}'`;
}

/**
 * A zsh completion script for the program: `source <(lanekeeper completion zsh)` after `compinit`, or save it as
 * `_lanekeeper` in a directory of `$fpath`. Subcommands and options with their descriptions, the choices of an
 * option or argument with a fixed set, file names elsewhere.
 */
export function zshCompletion(program: CompletionCommand): string {
  const all = nodes(program);
  const root = all[0]!.path;
  const fn = functionName(root);
  const cases = all
    .map((n) => {
      const subs = n.subcommands.map((s) => describeEntry(s.name, s.description)).join(" ");
      const opts = n.options.map((o) => describeEntry(o.flag, o.description)).join(" ");
      const valued = n.options.filter((o) => o.takesValue).map((o) => o.flag).join(" ");
      const choices = n.options
        .filter((o) => o.choices.length > 0)
        .map((o) => `        ${o.flag}) compadd -- ${o.choices.join(" ")}; return ;;`)
        .join("\n");
      return [
        `    "${n.path}")`,
        `      subs=(${subs})`,
        `      opts=(${opts})`,
        `      valued=(${valued})`,
        `      args=(${n.argChoices.join(" ")})`,
        choices === "" ? "" : `      case "$prev" in\n${choices}\n      esac`,
        "      ;;",
      ]
        .filter((l) => l !== "")
        .join("\n");
    })
    .join("\n");
  return `#compdef ${root}
# zsh completion for ${root}: generated by \`${root} completion zsh\` from the program's commands; do not edit.
# Use: source <(${root} completion zsh) after compinit, or save it as _${root} in a directory of $fpath.
${fn}() {
  local cmd="${root}" w i prev="\${words[CURRENT-1]}"
  local -a subs opts valued args
  for (( i = 2; i < CURRENT; i++ )); do
    w="\${words[i]}"
    case "$cmd:$w" in
${descendCases(all, "      ")}
    esac
  done
  case "$cmd" in
${cases}
  esac
  if [[ "$prev" == -* ]] && (( \${valued[(Ie)$prev]} )); then _files; return; fi
  if [[ "\${words[CURRENT]}" == -* ]]; then
    _describe -t options option opts
  elif (( \${#subs} )); then
    _describe -t commands command subs
  elif (( \${#args} )); then
    compadd -- $args
  else
    _files
  fi
}
if [[ "\${funcstack[1]}" == "${fn}" ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${root}
fi
`;
}
