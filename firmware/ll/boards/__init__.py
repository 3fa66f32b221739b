# Board layers: ll/boards/<board>.py exports `Board(cfg)`; found by name, by convention.


def load(cfg):
    mod = __import__("ll.boards." + cfg.board)
    return getattr(mod.boards, cfg.board).Board(cfg)
