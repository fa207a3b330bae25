"""MEGA (spec: /work/shared/specs/mega.md): end-to-end encrypted storage.

    codec.py        base64, a32, MPI, compact integers
    keys.py         password keys, user hash, master key, RSA session, node keys, attributes
    filecrypt.py    file keys, chunk table, AES-CTR, chunk MACs, meta-MAC
    fingerprint.py  the `c` attribute: the hash kind "mega"
    links.py        public links, both spellings
    api.py          /cs batches, the sc channel, the one error mapping
    session.py      v1/v2 login, ephemeral accounts
    tree.py         the decrypted node tree and its name index
    treefeed.py     the tree kept current from `f` and `sc`, in provider state
    transfer.py     resumable encrypted uploads, verified downloads
    provider.py     MegaProvider

Light on purpose: the registry imports this package to learn the type.
"""

from syncagent.hashing import register_hasher
from syncagent.providers.mega.fingerprint import HASH_KIND, MegaHasher

register_hasher(HASH_KIND, MegaHasher, needs_stat=True)
