"""Size limits for the repository's Python, the counterpart of ESLint's max-lines and max-lines-per-function (#28).

Counts code lines: a line holding a token other than a comment, a line break or indentation, and not part of a
docstring (the first string statement of a module, class or function), so blank lines, comments and docstrings are
free, as `skipBlankLines` and `skipComments` make them in eslint.config.js. A function's count covers its whole body,
nested functions included, from its `def` line (decorators excluded), like ESLint's. Debian has no tool that counts
this way: pylint's too-many-lines counts every line of a file and it limits statements per function, not lines.

Usage: check_py_sizes.py [--max-file N] [--max-function N] FILE...; prints `file:line: message` for each finding
and exits 1 when there is one.
"""

import argparse
import ast
import io
import sys
import tokenize
from typing import Iterable, List, Set, Union

MAX_FILE = 300
MAX_FUNCTION = 60

# Tokens that never make a line count as code.
_NON_CODE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
    tokenize.ENCODING,
}

_Scope = Union[ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef]


def _docstring_lines(tree: ast.Module) -> Set[int]:
    """The line numbers that the docstrings of the module, its classes and its functions span."""
    lines: Set[int] = set()
    scopes: List[_Scope] = [tree]
    scopes += [n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    for scope in scopes:
        first = scope.body[0] if scope.body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def code_lines(source: str, tree: ast.Module) -> Set[int]:
    """The line numbers that hold code (a token spanning several lines marks each of them)."""
    lines: Set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in _NON_CODE:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines - _docstring_lines(tree)


def check_file(path: str, max_file: int, max_function: int) -> List[str]:
    """The findings for one file, as `path:line: message`."""
    with open(path, encoding='utf-8') as f:
        source = f.read()
    tree = ast.parse(source, filename=path)
    code = code_lines(source, tree)
    findings: List[str] = []
    if len(code) > max_file:
        findings.append(f'{path}:1: file has {len(code)} code lines (max {max_file})')
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            span = range(node.lineno, (node.end_lineno or node.lineno) + 1)
            count = sum(1 for line in span if line in code)
            if count > max_function:
                findings.append(
                    f'{path}:{node.lineno}: function {node.name} has {count} code lines (max {max_function})'
                )
    return findings


def main(argv: Iterable[str]) -> int:
    parser = argparse.ArgumentParser(description='Code-line limits per Python file and function.')
    parser.add_argument('--max-file', type=int, default=MAX_FILE)
    parser.add_argument('--max-function', type=int, default=MAX_FUNCTION)
    parser.add_argument('files', nargs='*')
    args = parser.parse_args(list(argv))
    findings = [f for path in args.files for f in check_file(path, args.max_file, args.max_function)]
    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
