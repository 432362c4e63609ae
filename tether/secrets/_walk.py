"""Walking a document tree the way sops does: which values to encrypt, and the MAC over them.

Every leaf is visited in document order (documents, then entries, then list items). A value's
*path* is the keys leading to it (list indices are not part of it). Whether it is encrypted is
decided from the path and, for the comment regexes, from the comments seen just before it at
each level. The MAC is SHA-512 over the plaintext of every value (comments and nulls excluded;
values kept in clear included unless ``mac_only_encrypted``), written as upper-case hex.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tether.errors import SecretsError
from tether.secrets._cipher import Cipher, ValueFailure, is_ciphertext, plaintext_of
from tether.secrets._metadata import EncryptionRules
from tether.secrets._tree import Branch, Comment

MAC_ONLY_ENCRYPTED_INIT = hashlib.sha256(b"sops").digest()
"""What sops feeds the MAC first with ``mac_only_encrypted``, so the two kinds never collide."""

Stack = tuple[tuple[str, ...], ...]
Visit = Callable[[Any, tuple[str, ...], Stack, bool, str, bool], Any]
"""(value, path, comments stack, value is a comment, where for messages, value is a list item)"""


class _Selector:
    """sops' decision whether one value (or comment) is encrypted."""

    def __init__(self, rules: EncryptionRules) -> None:
        self.rules = rules
        self._regex = {
            name: re.compile(value)
            for name, value in rules.selectors().items()
            if name.endswith("_regex")
        }

    def _search(self, name: str, text: str) -> bool:
        return self._regex[name].search(text) is not None

    def encrypted(self, path: tuple[str, ...], stack: Stack, is_comment: bool) -> bool:
        rules = self.rules
        encrypted = True
        if rules.unencrypted_suffix and any(k.endswith(rules.unencrypted_suffix) for k in path):
            encrypted = False
        if rules.encrypted_suffix:
            encrypted = any(k.endswith(rules.encrypted_suffix) for k in path)
        if rules.unencrypted_regex and any(self._search("unencrypted_regex", k) for k in path):
            encrypted = False
        if rules.encrypted_regex:
            encrypted = any(self._search("encrypted_regex", k) for k in path)
        if rules.unencrypted_comment_regex and any(
            self._search("unencrypted_comment_regex", c) for level in stack for c in level
        ):
            encrypted = False
        if rules.encrypted_comment_regex:
            encrypted = False
            last_level = len(stack) - 1
            for i, level in enumerate(stack):
                for j, text in enumerate(level):
                    # The comment line being decided on does not count for itself.
                    if is_comment and i == last_level and j == len(level) - 1:
                        continue
                    if self._search("encrypted_comment_regex", text):
                        encrypted = True
        return encrypted


def _walk(documents: Sequence[Branch], visit: Visit) -> None:
    for document in documents:
        _walk_branch(document, (), (), visit, "")


def _walk_branch(
    branch: Branch, path: tuple[str, ...], outer: Stack, visit: Visit, at: str
) -> None:
    level: list[str] = []
    for index, entry in enumerate(branch.entries):
        if isinstance(entry, Comment):
            level.append(entry.text)
            result = visit(entry, path, (*outer, tuple(level)), True, at, False)
            branch.entries[index] = Comment(_comment_text(result), entry.inline)
            continue
        where = f"{at}.{entry.key}" if at else entry.key
        entry.value = _walk_value(
            entry.value, (*path, entry.key), (*outer, tuple(level)), visit, where, False
        )
        level = []


def _walk_list(
    items: list[Any], path: tuple[str, ...], outer: Stack, visit: Visit, at: str
) -> None:
    level: list[str] = []
    position = 0
    for index, item in enumerate(items):
        is_comment = isinstance(item, Comment)
        if is_comment:
            level.append(item.text)
        items[index] = _walk_value(
            item, path, (*outer, tuple(level)), visit, f"{at}[{position}]", True
        )
        if not is_comment:
            level = []
            position += 1


def _walk_value(
    value: Any, path: tuple[str, ...], stack: Stack, visit: Visit, at: str, in_list: bool
) -> Any:
    if isinstance(value, Branch):
        _walk_branch(value, path, stack, visit, at)
        return value
    if isinstance(value, list):
        _walk_list(value, path, stack, visit, at)
        return value
    if value is None:
        return None
    return visit(value, path, stack, isinstance(value, Comment), at, in_list)


def _comment_text(value: Any) -> str:
    return value.text if isinstance(value, Comment) else str(value)


def _aad(path: tuple[str, ...]) -> str:
    return ":".join(path) + ":"


class _Mac:
    def __init__(self, mac_only_encrypted: bool) -> None:
        self.mac_only_encrypted = mac_only_encrypted
        self.hash = hashlib.sha512()
        if mac_only_encrypted:
            self.hash.update(MAC_ONLY_ENCRYPTED_INIT)

    def add(self, value: Any, encrypted: bool) -> None:
        if isinstance(value, Comment) or (self.mac_only_encrypted and not encrypted):
            return
        self.hash.update(plaintext_of(value)[1])

    def hex(self) -> str:
        return self.hash.hexdigest().upper()


def encrypt_tree(
    documents: Sequence[Branch], rules: EncryptionRules, cipher: Cipher, source: str
) -> str:
    """Encrypt the selected values in place; return the MAC (upper-case hex) of the plaintext."""
    selector = _Selector(rules)
    mac = _Mac(rules.mac_only_encrypted)

    def visit(
        value: Any, path: tuple[str, ...], stack: Stack, is_comment: bool, at: str, _: bool
    ) -> Any:
        encrypted = selector.encrypted(path, stack, is_comment)
        try:
            mac.add(value, encrypted)
            if not encrypted:
                return value
            result = cipher.encrypt(value, _aad(path))
        except ValueFailure as failure:
            raise SecretsError(f"{source}: cannot encrypt {at or 'a comment'}: {failure}") from None
        if is_comment:
            if rules.unencrypted_comment_regex and re.search(
                rules.unencrypted_comment_regex, result
            ):
                raise SecretsError(
                    f"{source}: an encrypted comment matches unencrypted_comment_regex, so it "
                    "could not be decrypted again; make the regex unable to match ENC[…]"
                )
            return Comment(result, value.inline)
        return result

    _walk(documents, visit)
    return mac.hex()


def decrypt_tree(
    documents: Sequence[Branch],
    rules: EncryptionRules,
    cipher: Cipher,
    source: str,
    comment_paths: Callable[[], list[tuple[str, ...]]],
) -> str:
    """Decrypt the selected values in place; return the MAC (upper-case hex) of the result.

    A comment that does not decrypt under its own path is tried under the other paths of the
    document (its place in hand-edited YAML is ambiguous), then kept as it is, like sops does.
    """
    selector = _Selector(rules)
    mac = _Mac(rules.mac_only_encrypted)

    def visit(
        value: Any, path: tuple[str, ...], stack: Stack, is_comment: bool, at: str, in_list: bool
    ) -> Any:
        encrypted = selector.encrypted(path, stack, is_comment)
        result = value
        if encrypted and is_comment:
            result = _decrypt_comment(cipher, value, path, comment_paths)
        elif encrypted:
            if not isinstance(value, str) or (value and not is_ciphertext(value)):
                raise SecretsError(
                    f"{source}: {at} is not encrypted although the file's rules say it should "
                    "be: the file was modified after encryption (add values with `tether "
                    "secrets edit`, which encrypts them)"
                )
            try:
                result = cipher.decrypt(value, _aad(path))
            except ValueFailure as failure:
                raise SecretsError(f"{source}: cannot decrypt {at}: {failure}") from None
            if isinstance(result, Comment) and not in_list:
                raise SecretsError(f"{source}: cannot decrypt {at}: it holds a comment")
        mac.add(result, encrypted)
        return result

    _walk(documents, visit)
    return mac.hex()


def _decrypt_comment(
    cipher: Cipher,
    comment: Comment,
    path: tuple[str, ...],
    other_paths: Callable[[], list[tuple[str, ...]]],
) -> Comment:
    if not is_ciphertext(comment.text):
        return comment

    def attempts() -> Iterator[tuple[str, ...]]:
        yield from (path[:n] for n in range(len(path), -1, -1))
        yield from other_paths()

    tried: set[tuple[str, ...]] = set()
    for candidate in attempts():
        if candidate in tried:
            continue
        tried.add(candidate)
        try:
            result = cipher.decrypt(comment.text, _aad(candidate))
        except ValueFailure:
            continue
        return Comment(_comment_text(result), comment.inline)
    return comment
