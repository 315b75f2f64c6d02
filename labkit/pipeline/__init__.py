"""The capstone pipeline: stages connected by one versioned data contract.

loader (:mod:`.loader`) -> detector and segmenter (:mod:`.models`, preprocessing contract in
:mod:`.preprocess`) -> exporter (frame records, :mod:`.records`) -> renderer (:mod:`.render`);
:mod:`.run` ties them into ``labkit run``, :mod:`.evaluate` scores a run, :mod:`.diagnose` slices its
recall and picks its worst frames, :mod:`.spec` reads the capstone spec, and :mod:`.report`
writes its report. The tracker stage joins when ``labkit.track`` lands (config ``tracker: null``).
"""
