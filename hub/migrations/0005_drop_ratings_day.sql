-- Schema 5: no index of ratings by day.
-- Reports read daily_counts (0004); no query reads ratings by day any more, and every stored
-- rating paid for keeping this index. Queries that need ratings by time get their own index.
DROP INDEX IF EXISTS ratings_day;
