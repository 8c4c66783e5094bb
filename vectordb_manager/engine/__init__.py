"""The store engine: records, vectors, search and the commit protocol, over any `Storage`.

Where each concern lives:

=====================  ========================================================================
``core``               `Engine`, the facade: locks, the public operations, the write path
``queries``            `Queries`, the engine's read side: lookups and searches under the read lock
``group_commit``       writes queued while another commits share the next commit
``commit_log``         `CommitLog`: list manifests, read the newest, propose the next version
                       (create-if-absent, the ambiguous failure), write and remove files,
                       collect what old versions leave behind
``retention``          when old manifests and replaced files may be removed
``retry``              `RetryPolicy`: what to retry, the backoff, the budget (clock injected)
``loading``            `Loader`: a manifest's files in, a verified `StoreState` out (open,
                       refresh), streamed and read ahead
``state``              `StoreState`: records by slot, the id map, value indexes, the index
``index``              `VectorIndex`: FAISS flat / HNSW / IVF over the slots, snapshots
``hybrid``             vector and keyword rankings fused exactly in NumPy over the passing slots
``search``             nearest neighbours on a state, exact under filters; keyword search
``text_index``         `TextIndex`: the keyword postings over the slots, BM25 over the live ones
``postings``           a segment's postings: built from texts, its ``postings`` section
``analyzer``           texts to the terms the keyword index holds and queries look up
``term_table``         an analyzer's lasting ids of the pieces of text and terms it has seen
``vectors``            rows and query vectors checked, normalised and shaped
``filters``            the metadata filter language, compiled to predicates and index plans
``value_index``        `ValueIndex`: the value columns over the slots; index plans answered
``columns``            a segment's metadata value columns: built, merged, its ``values`` section
``filter_ops``         the filters' values (kinds, equality, date literals) and field operators
``compaction``         when to merge segments (the policy) and the merge itself
``verification``       files against memory, records against their hashes
``format``             segment files: sections, encoding, checksummed streaming reads
``manifest``           manifests: `Manifest` and its file references, the strict parser
``records``            records as JSON lines, kept undecoded and decoded on demand; dates and
                       datetimes in metadata, tagged in records flagged typed
``npy``                the vectors' ``.npy`` prefix and header grammar (no ``ast``)
``hashing``            content hashes, and reading a file while checking its SHA-256
``options``            distances, index types and defaults, named once
``settings``           the settings a store is opened with, met with the recorded ones
``limits``             the sizes and depths a store accepts and a reader believes
``locks``              the readers-writer lock
=====================  ========================================================================

``docs/architecture.md`` follows an add, an ingested file and a filtered query through these.
"""
