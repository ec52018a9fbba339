"""Realistic answer fixtures: the 2024 seed article and a 2018 BBC Arabic report disagreeing on a figure."""

from __future__ import annotations

from qa_service.models import Passage

# Arabi Post, 2024-01-25 (the bundled seed article, qa_service/samples/seed.jsonl).
SEED_TEXT = (
    "أعلنت بغداد، الخميس 25 يناير/كانون الثاني 2024، توصلها إلى اتفاق مع واشنطن من أجل صياغة جدول "
    "زمني لـ\"مباشرة الخفض التدريجي لمستشاري التحالف الدولي على الأرض العراقية\".\n\n"
    "وتنشر الولايات المتحدة 2500 عسكري في العراق لتقديم المشورة والمساعدة لقواته لمنع ظهور تنظيم "
    "الدولة الإسلامية مجدداً، بعدما سيطر على مساحات شاسعة من البلاد في عام 2014 قبل أن يهزمه الجيش العراقي."
)
# BBC Arabic, 2018-03-16, «سقوط طائرة عسكرية أمريكية غربي العراق»,
# http://www.bbc.co.uk/arabic/middleeast-43425227 — excerpt from the ANT Corpus v2.1
# (antcorpus/antcorpus.multisource.data, ../shared/data/ant-news-ar.jsonl.gz), text unchanged.
BBC_2018_TEXT = (
    "وتقر الولايات المتحدة إن هناك 522 عسكريا أمريكيا في العراق، وهم جزء من فريق تابع لتحالف يساهم "
    "في مكافحة تنظيم الدولة الإسلامية.\n"
    "وكان رئيس الوزراء العراقي حيدر العبادي قد أعلن الانتصار على تنظيم الدولة العام الماضي."
)


def passage(doc: str, text: str, score: float, *, start: int = 0, source: str | None = None,
            published_at: str | None = None, lang: str = "ar") -> Passage:
    return Passage(chunk_id=f"{doc}-c", document_id=doc, text=text, start=start,
                   end=start + len(text), score=score, title=f"title of {doc}", source=source,
                   published_at=published_at, lang=lang)


SEED = passage("seed", SEED_TEXT, 0.86, start=120, source="عربي بوست",
               published_at="2024-01-25T15:41:00+00:00")
BBC = passage("bbc", BBC_2018_TEXT, 0.85, source="BBC", published_at="2018-03-16T00:53:52+00:00")
